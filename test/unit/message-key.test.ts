import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../shared/config.js';

const DEPLOYED = { SECRETS_PARAMETER_PREFIX: '/paybridge/prod', LOG_HASH_KEY: 'a-deployed-hash-key-of-32-chars!' };

describe('RETRY_MESSAGE_KEY (issue 20 item 4)', () => {
  it('a deployed function refuses to start without it, or with a short one, naming the parameter', () => {
    expect(() => parseConfig(DEPLOYED)).toThrow(/RETRY_MESSAGE_KEY is required in a deployed stage and did not arrive: create \/paybridge\/prod\/common\/RETRY_MESSAGE_KEY/);
    expect(() => parseConfig({ ...DEPLOYED, RETRY_MESSAGE_KEY: 'short' })).toThrow(/RETRY_MESSAGE_KEY: every key must be at least 32 characters/);
    expect(parseConfig({ ...DEPLOYED, RETRY_MESSAGE_KEY: `${'a'.repeat(32)} ${'b'.repeat(32)}` }).messageKeys).toEqual({ sign: 'a'.repeat(32), verify: ['a'.repeat(32), 'b'.repeat(32)] });
  });

  it('outside AWS without one: a random key, the same for every part of the process, never a constant', () => {
    const a = parseConfig({}).messageKeys;
    expect(a.sign).toMatch(/^[0-9a-f]{64}$/);
    expect(parseConfig({ API_KEYS: 'x' }).messageKeys).toEqual(a);
  });
});
