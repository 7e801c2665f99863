import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalJson, payloadHash, samePayload } from '../../../shared/core/canonical.js';

describe('canonical JSON and payload hash', () => {
  it('sorts keys at every depth and drops undefined members', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { z: 1, y: 2 }], c: undefined } })).toBe('{"a":{"d":[2,{"y":2,"z":1}]},"b":1}');
  });
  it('hashes equal meaning equally and different values differently', () => {
    expect(payloadHash({ status: 'PAID', contactId: 'x', paymentType: 'CARD' })).toBe(payloadHash({ paymentType: 'CARD', contactId: 'x', status: 'PAID' }));
    expect(payloadHash({ paymentType: 'CARD' })).not.toBe(payloadHash({ paymentType: 'CASH' }));
    expect(payloadHash({ amount: 1 })).not.toBe(payloadHash({ amount: '1' }));
    expect(payloadHash({})).toMatch(/^[0-9a-f]{64}$/);
  });
  it('is keyed: a record hash cannot be matched by hashing candidate patients or personIds without the key', () => {
    const notice = { status: 'PAID', contactId: 'c-1', paymentType: 'CARD', patient: '199001011234' };
    const plain = createHash('sha256').update(canonicalJson(notice)).digest('hex');
    expect(payloadHash(notice, 'k'.repeat(32))).not.toBe(plain);
    expect(payloadHash(notice, 'k'.repeat(32))).not.toBe(payloadHash(notice, 'j'.repeat(32)));
    expect(payloadHash(notice, 'k'.repeat(32))).toBe(payloadHash({ ...notice }, 'k'.repeat(32)));
  });
  it('a record written before the hash was keyed (plain SHA-256) still knows its own payload again, and only its own', () => {
    const notice = { status: 'PAID', contactId: 'c-1', paymentType: 'CARD' };
    const legacy = createHash('sha256').update(canonicalJson(notice)).digest('hex');
    expect(samePayload(legacy, { ...notice })).toBe(true);
    expect(samePayload(legacy, { ...notice, paymentType: 'CASH' })).toBe(false);
    expect(samePayload(payloadHash(notice), notice)).toBe(true);
  });
});
