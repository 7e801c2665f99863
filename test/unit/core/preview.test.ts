import { describe, expect, it } from 'vitest';
import { previewOperatorAction } from '../../../shared/core/preview.js';
import type { PaymentRecord } from '../../../shared/core/types.js';

const NOW = Date.parse('2026-12-07T10:00:00Z');
const record = (over: Partial<PaymentRecord>): PaymentRecord => ({
  pk: 'nif#default#k', system: 'nif', tenant: 'default', key: 'k', status: 'held', version: 3, revision: 1, payloadHash: 'h', request: {}, attempts: 1, failures: 1,
  budgetFrom: NOW, checkpoints: {}, history: [], correlationId: 'c', createdAt: '', updatedAt: '', ttl: 0, ...over,
});

describe('previewOperatorAction (until the transition function answers it)', () => {
  it.each([
    ['redrive', 'held', true],
    ['redrive', 'unknown', false],
    ['repost', 'failed', true],
    ['repost', 'posted', false],
    ['resolve-posted', 'unknown', true],
    ['resolve-not-posted', 'held', false],
  ] as const)('%s on a %s payment: allowed %s', (action, status, allowed) => {
    const p = previewOperatorAction(record({ status }), action, NOW);
    expect(p.allowed).toBe(allowed);
    if (!allowed) expect(p.reason).toMatch(new RegExp(`it is ${status}`));
  });

  it('refuses while an attempt is in flight', () => {
    expect(previewOperatorAction(record({ leaseUntil: NOW + 1000 }), 'redrive', NOW)).toMatchObject({ allowed: false, reason: expect.stringMatching(/in flight/) });
  });

  it('says what the downstream may hold: nothing, an ambiguous send, or confirmed steps', () => {
    expect(previewOperatorAction(record({ error: { kind: 'auth', message: 'x' } }), 'redrive', NOW).mayHold).toMatch(/^nothing/);
    expect(previewOperatorAction(record({ status: 'unknown', error: { kind: 'ambiguous', message: 'timeout' } }), 'repost', NOW)).toMatchObject({
      mayHold: expect.stringMatching(/maybe.*check by hand/),
      will: expect.stringMatching(/only if you are sure/),
    });
    expect(previewOperatorAction(record({ system: 'brp', checkpoints: { orderId: 7 } }), 'repost', NOW).mayHold).toMatch(/orderId/);
  });
});
