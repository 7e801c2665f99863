import { describe, expect, it } from 'vitest';
import type { Observation } from '../../../../shared/core/classify.js';
import { classifyCambio } from '../../../../shared/systems/cambio/errors.js';

const ok = (body: unknown, status = 200): Observation => ({ kind: 'response', status, headers: {}, body, text: JSON.stringify(body) });

describe('classifyCambio (seed 000 answers)', () => {
  it.each([
    ['OK', [{ ResultCode: 'OK', Comment: 'string', Any: [{}] }], { type: 'posted' }],
    ['INFO keeps the comment', [{ ResultCode: 'INFO', Comment: 'Redan betald' }], { type: 'posted', note: 'Redan betald' }],
    ['ERROR in a 200 is a rejection', [{ ResultCode: 'ERROR', Comment: 'Kontakt saknas' }], { type: 'rejected', code: 'ERROR', message: 'Kontakt saknas', httpStatus: 200 }],
    ['ERROR among OKs still rejects', [{ ResultCode: 'OK' }, { ResultCode: 'ERROR', Comment: 'a' }, { ResultCode: 'ERROR', Comment: 'b' }], { type: 'rejected', message: 'a; b' }],
    ['ERROR without a comment', [{ ResultCode: 'ERROR' }], { type: 'rejected', message: 'Cambio answered ResultCode ERROR' }],
    ['a single object', { ResultCode: 'ERROR', Comment: 'x' }, { type: 'rejected' }],
  ])('%s', (_n, body, expected) => {
    expect(classifyCambio(ok(body), 0)).toMatchObject(expected);
  });

  it('falls back to the generic table for non-2xx answers', () => {
    expect(classifyCambio(ok({ statusCode: 429, message: 'Rate limit is exceeded. Try again in 5 seconds.' }, 429), 0)).toMatchObject({ type: 'rate_limited', waitMs: 5_000 });
    expect(classifyCambio(ok({ statusCode: 403, message: 'Insufficient scope.' }, 403), 0)).toMatchObject({ type: 'auth', message: 'Insufficient scope.' });
    expect(classifyCambio(ok({ statusCode: 401, message: 'Invalid access token.' }, 401), 0)).toMatchObject({ type: 'auth' });
    expect(classifyCambio({ kind: 'error', sent: true, code: 'ECONNRESET', message: 'socket hang up' }, 0)).toMatchObject({ type: 'ambiguous' });
  });
});
