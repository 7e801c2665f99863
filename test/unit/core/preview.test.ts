import { describe, expect, it } from 'vitest';
import { previewOperatorAction } from '../../../shared/core/preview.js';
import type { PaymentRecord } from '../../../shared/core/types.js';

const NOW = Date.parse('2026-12-07T10:00:00Z');
const record = (over: Partial<PaymentRecord>): PaymentRecord => ({
  pk: 'nif#default#k', system: 'nif', tenant: 'default', key: 'k', status: 'held', version: 3, revision: 1, payloadHash: 'h', request: {}, attempts: 1, failures: 1,
  budgetFrom: NOW, checkpoints: {}, history: [], correlationId: 'c', createdAt: '', updatedAt: '', ttl: 0, ...over,
});

describe('previewOperatorAction: the transition function answers before the action is taken', () => {
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

  it('says what the downstream may hold: nothing, an unconfirmed send, or what it holds, and what the action does about it', () => {
    expect(previewOperatorAction(record({ error: { kind: 'auth', message: 'x' } }), 'redrive', NOW)).toMatchObject({ mayHold: 'nothing', will: 'send it to nif' });
    // NIF's second generation cannot be read back: a payment it may hold is refused a repost until an operator resolves it.
    expect(previewOperatorAction(record({ status: 'unknown', unconfirmed: { since: NOW - 5_000, at: NOW - 5_000, revision: 1 } }), 'repost', NOW)).toMatchObject({
      allowed: false,
      mayHold: expect.stringMatching(/^maybe revision 1/),
      reason: expect.stringMatching(/resolve it --not-posted/),
    });
    expect(previewOperatorAction(record({ system: 'nif-membership', pk: 'nif-membership#1#1:k', unconfirmed: { since: NOW - 5_000, at: NOW - 5_000, revision: 1 } }), 'redrive', NOW).will).toMatch(/^reconcile first/);
    expect(previewOperatorAction(record({ system: 'brp', pk: 'brp#default#k', checkpoints: { orderId: 7 } }), 'repost', NOW)).toMatchObject({ mayHold: 'order 7', will: expect.stringMatching(/resume from what brp holds \(order 7\)/) });
  });
});
