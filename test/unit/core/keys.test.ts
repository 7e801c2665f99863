import { describe, expect, it } from 'vitest';
import { assertStorableKey, DYNAMODB_PARTITION_KEY_BYTES, keyErrors, MAX_RECORD_PK_BYTES, RESERVED_PREFIX_BYTES } from '../../../shared/core/keys.js';
import { recordPk } from '../../../shared/core/types.js';
import { ProblemError } from '../../../shared/http/problem.js';

const ref = (key: string, pointer = '#/contactId') => ({ system: 'cambio', tenant: 'default', key, pointer });
/** Bytes `cambio#default#` adds in front of the key. */
const overhead = Buffer.byteLength(recordPk('cambio', 'default', ''), 'utf8');

describe('keys: storable and addressable before anything is recorded', () => {
  it('accepts ordinary keys, astral characters in pairs, and % or / (they are encoded once in URLs)', () => {
    for (const key of ['c-1', 'a%25b/c', 'Åsa 😀', '4568:idem:x']) expect(keyErrors(ref(key))).toEqual([]);
  });

  it('refuses a lone high or low surrogate, naming the field it came from', () => {
    for (const key of ['repro\ud800', '\udc00x', 'a\ud83d']) {
      const errors = keyErrors(ref(key, 'header:Idempotency-Key'));
      expect(errors).toHaveLength(1);
      expect(errors[0]?.pointer).toBe('header:Idempotency-Key');
      expect(errors[0]?.detail).toMatch(/well-formed Unicode/);
    }
  });

  it('keeps 256 bytes under DynamoDB\'s 2,048-byte partition key limit, counted in UTF-8', () => {
    expect(DYNAMODB_PARTITION_KEY_BYTES).toBe(2048);
    expect(MAX_RECORD_PK_BYTES).toBe(2048 - RESERVED_PREFIX_BYTES);
    const room = MAX_RECORD_PK_BYTES - overhead;
    expect(keyErrors(ref('k'.repeat(room)))).toEqual([]);
    const over = keyErrors(ref('k'.repeat(room + 1)));
    expect(over).toEqual([{ pointer: '#/contactId', detail: `is too long: at most ${room} bytes of UTF-8 fit in the record key here (this one is ${room + 1})` }]);
    // Three bytes per character in UTF-8: the limit is bytes, not characters.
    expect(keyErrors(ref('€'.repeat(Math.floor(room / 3))))).toEqual([]);
    expect(keyErrors(ref('€'.repeat(Math.floor(room / 3) + 1)))).toHaveLength(1);
  });

  it('throws a 400 validation-failed problem that names the field', () => {
    let thrown: unknown;
    try {
      assertStorableKey(ref('x\ud800', 'path:externalId'), 'payment');
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ProblemError);
    const p = thrown as ProblemError;
    expect([p.status, p.slug]).toEqual([400, 'validation-failed']);
    expect(p.errors?.[0]?.pointer).toBe('path:externalId');
    expect(() => assertStorableKey(ref('fine'))).not.toThrow();
  });
});
