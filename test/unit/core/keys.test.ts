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

describe('one visible key is one key (issue 20, item 13)', () => {
  const NFC = 'S\u00e5ng-\u00e9t\u00e9';
  const NFD = NFC.normalize('NFD');

  it('refuses a key not in Unicode normalization form C, naming the rule; its NFC form passes', () => {
    expect(NFD).not.toBe(NFC);
    expect(keyErrors(ref(NFC))).toEqual([]);
    expect(keyErrors(ref(NFD))).toEqual([{ pointer: '#/contactId', detail: expect.stringMatching(/normalization form C \(NFC\)/) }]);
  });

  it.each([
    ['NUL', 'ab\u0000c'], ['a C1 control', 'ab\u0085c'], ['DEL', 'ab\u007fc'], ['BOM (U+FEFF)', 'ab\ufeffc'], ['zero-width space', 'ab\u200bc'],
    ['right-to-left mark', 'ab\u200fc'], ['a bidi override', '\u202eabc'], ['a soft hyphen', 'ab\u00adc'], ['word joiner', 'ab\u2060c'],
  ])('refuses a key holding %s: invisible, so two keys that look alike would be two payments', (_what, key) => {
    expect(keyErrors(ref(key, '#/externalId'))).toEqual([{ pointer: '#/externalId', detail: expect.stringMatching(/control or format characters/) }]);
  });

  it('keeps accepting what was accepted before: letters of any script, emoji, spaces inside, % and /', () => {
    for (const key of ['Åsa Öberg', '\u0645\u062d\u0645\u062f', '\u5f20\u4e09', 'a%25b/c', '😀 x', 'k\u00f8b']) expect(keyErrors(ref(key))).toEqual([]);
  });
});

