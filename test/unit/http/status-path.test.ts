import { describe, expect, it } from 'vitest';
import { statusPath } from '../../../shared/http/payments.js';

describe('statusPath', () => {
  it('percent-encodes each segment once, / and % included, so the key comes back whole', () => {
    expect(statusPath('cambio', 'a%25b/c')).toBe('/v1/payments/cambio/a%2525b%2Fc');
    expect(statusPath('nif-membership', '4568:3248')).toBe('/v1/payments/nif-membership/4568%3A3248');
    expect(decodeURIComponent(statusPath('cambio', 'Åsa 😀').split('/').at(-1) as string)).toBe('Åsa 😀');
  });

  it('never throws, even for a key with a lone surrogate recorded before intake refused them (issue 13)', () => {
    expect(() => encodeURIComponent('repro\ud800')).toThrow(URIError);
    expect(statusPath('cambio', 'repro\ud800')).toBe('/v1/payments/cambio/repro%EF%BF%BD');
  });
});
