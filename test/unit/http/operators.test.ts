import { describe, expect, it } from 'vitest';
import { findOperator, parseOperatorKeys } from '../../../shared/http/operators.js';

describe('OPERATOR_KEYS', () => {
  it('reads name=key as an operator, and name:viewer=key / name:operator=key with their role', () => {
    const keys = parseOperatorKeys(' ann=ann-key-0123456789abcdef, ben:viewer=ben-key-0123456789abcdef,cy:operator=cy-key-0123456789abcdefg ');
    expect([...keys.entries()]).toEqual([
      ['ann-key-0123456789abcdef', { name: 'ann', role: 'operator' }],
      ['ben-key-0123456789abcdef', { name: 'ben', role: 'viewer' }],
      ['cy-key-0123456789abcdefg', { name: 'cy', role: 'operator' }],
    ]);
    expect(parseOperatorKeys(undefined).size).toBe(0);
    expect(parseOperatorKeys('  ').size).toBe(0);
  });

  it.each(['ann', 'ann=short', 'ann:admin=ann-key-0123456789abcdef', '=ann-key-0123456789abcdef', 'a b=ann-key-0123456789abcdef'])('refuses %j naming OPERATOR_KEYS, never the key', (raw) => {
    expect(() => parseOperatorKeys(raw)).toThrow(/OPERATOR_KEYS entry 1 is malformed/);
    try {
      parseOperatorKeys(raw);
    } catch (err) {
      expect((err as Error).message).not.toContain('0123456789');
    }
  });

  it('refuses a key given to two operators', () => {
    expect(() => parseOperatorKeys('a=same-key-0123456789abc,b=same-key-0123456789abc')).toThrow(/entry 2 repeats the key/);
  });

  it('finds the operator of a presented key, and nobody for any other', () => {
    const keys = parseOperatorKeys('ann=ann-key-0123456789abcdef,ben:viewer=ben-key-0123456789abcdef');
    expect(findOperator(keys, 'ben-key-0123456789abcdef')).toEqual({ name: 'ben', role: 'viewer' });
    expect(findOperator(keys, 'ben-key-0123456789abcde')).toBeUndefined();
    expect(findOperator(keys, '')).toBeUndefined();
  });
});
