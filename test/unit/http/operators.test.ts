import { describe, expect, it } from 'vitest';
import { findOperator, parseOperatorKeys } from '../../../shared/http/operators.js';

describe('OPERATOR_KEYS', () => {
  it('name=key is an operator; name:viewer=key a viewer; keys are found whichever entry holds them', () => {
    const keys = parseOperatorKeys(' ada=ada-key-0123456789abcdef , bob:viewer=bob-key-0123456789abcdef,cy:operator=cy-key-0123456789abcdefg=');
    expect(findOperator(keys, 'ada-key-0123456789abcdef')).toEqual({ name: 'ada', role: 'operator' });
    expect(findOperator(keys, 'bob-key-0123456789abcdef')).toEqual({ name: 'bob', role: 'viewer' });
    // Base64 padding stays part of the key.
    expect(findOperator(keys, 'cy-key-0123456789abcdefg=')).toEqual({ name: 'cy', role: 'operator' });
    expect(findOperator(keys, 'ada-key-0123456789abcde')).toBeUndefined();
    expect(findOperator(keys, '')).toBeUndefined();
    expect(parseOperatorKeys(undefined).size).toBe(0);
  });

  it('a malformed entry fails naming OPERATOR_KEYS and the entry, never its key', () => {
    const cases: [string, RegExp][] = [
      ['justakey-0123456789abcdef', /entry 1 must be name=key/],
      ['ada=short', /entry 1 \(ada\) has a key shorter than 16/],
      ['ada:admin=ada-key-0123456789abcdef', /unknown role/],
      ['Ada=ada-key-0123456789abcdef', /invalid name/],
      ['ada=ada-key-0123456789abcdef,bob=ada-key-0123456789abcdef', /entry 2 \(bob\) repeats the key/],
    ];
    for (const [text, message] of cases) {
      expect(() => parseOperatorKeys(text), text).toThrow(message);
      try {
        parseOperatorKeys(text);
      } catch (err) {
        expect((err as Error).message).toMatch(/^invalid configuration: OPERATOR_KEYS/);
        expect((err as Error).message).not.toContain('0123456789');
      }
    }
  });
});
