import { describe, expect, it } from 'vitest';
import { applyOutcome, DEFAULT_SETTINGS } from '../../../shared/core/lifecycle.js';
import type { AmbiguityPolicy, Outcome, PaymentRecord } from '../../../shared/core/types.js';

const NOW = Date.parse('2026-11-22T12:00:00Z');

function leased(over: Partial<PaymentRecord> = {}): PaymentRecord {
  return {
    pk: 'cambio#default#c1', system: 'cambio', tenant: 'default', key: 'c1', status: 'retrying', version: 3,
    payloadHash: 'h', request: {}, attempts: 0, failures: 0, leaseOwner: 'w', leaseUntil: NOW + 60_000,
    nextAttemptAt: NOW + 60_000, dueShard: 'due', slot: { at: NOW, gen: 1 }, checkpoints: {}, history: [],
    correlationId: 'c', createdAt: new Date(NOW - 1_000).toISOString(), updatedAt: new Date(NOW - 1_000).toISOString(), ttl: 1,
    ...over,
  };
}

const apply = (outcome: Outcome, policy: AmbiguityPolicy = 'resend', rec = leased()) =>
  applyOutcome(rec, outcome, { now: NOW, policy, settings: DEFAULT_SETTINGS, random: () => 0.5 });

describe('applyOutcome: the next state after one attempt', () => {
  it.each<[string, Outcome, AmbiguityPolicy, string, boolean]>([
    ['posted', { type: 'posted', httpStatus: 200, body: [] }, 'resend', 'posted', false],
    ['429', { type: 'rate_limited', waitMs: 5_000, message: 'slow down' }, 'resend', 'retrying', true],
    ['503', { type: 'retryable', message: 'down' }, 'park', 'retrying', true],
    ['ambiguous, resend', { type: 'ambiguous', message: '500' }, 'resend', 'retrying', true],
    ['ambiguous, reconcile', { type: 'ambiguous', message: '500' }, 'reconcile', 'reconciling', true],
    ['ambiguous, park', { type: 'ambiguous', message: '500' }, 'park', 'unknown', false],
    ['rejected', { type: 'rejected', httpStatus: 400, code: '3009', message: 'Invalid payment type' }, 'reconcile', 'failed', false],
    ['auth', { type: 'auth', httpStatus: 403, message: 'Insufficient scope.' }, 'resend', 'held', false],
  ])('%s → %s', (_n, outcome, policy, status, wakes) => {
    const d = apply(outcome, policy);
    expect(d.record.status).toBe(status);
    expect(d.record.attempts).toBe(1);
    expect(d.record.leaseUntil).toBeUndefined();
    expect(d.record.slot).toBeUndefined();
    expect(d.wakeAt !== undefined).toBe(wakes);
    // Only records the engine still works on stay visible to the sweep.
    expect(d.record.dueShard === 'due').toBe(wakes);
    if (wakes) expect(d.record.nextAttemptAt).toBe(d.wakeAt);
  });

  it('a 429 never counts towards the failure budget and pauses the whole system for the stated wait', () => {
    const d = apply({ type: 'rate_limited', waitMs: 5_000, message: 'Try again in 5 seconds.' }, 'resend', leased({ failures: 7 }));
    expect(d.record.failures).toBe(7);
    expect(d.record.status).toBe('retrying');
    expect(d.pauseUntil).toBe(NOW + 5_000);
    expect(d.wakeAt).toBeGreaterThanOrEqual(NOW + 5_000);
  });

  it('a retryable failure counts, and the last allowed one gives up as failed', () => {
    expect(apply({ type: 'retryable', message: 'x' }, 'resend', leased({ failures: 2 })).record.failures).toBe(3);
    const last = apply({ type: 'retryable', message: 'connection refused' }, 'resend', leased({ failures: DEFAULT_SETTINGS.maxFailures - 1 }));
    expect(last.record.status).toBe('failed');
    expect(last.record.error?.message).toMatch(/gave up after 8 failed attempts; last: connection refused/);
    expect(last.wakeAt).toBeUndefined();
  });

  it('gives up past the maximum age, even when only rate limited', () => {
    const old = leased({ createdAt: new Date(NOW - DEFAULT_SETTINGS.maxAgeMs).toISOString() });
    expect(apply({ type: 'rate_limited', message: 'slow' }, 'resend', old).record.status).toBe('failed');
    expect(apply({ type: 'retryable', message: 'down' }, 'resend', old).record.status).toBe('failed');
  });

  it('keeps the downstream code and message of a rejection, and the comment of a success', () => {
    expect(apply({ type: 'rejected', httpStatus: 200, code: 'ERROR', message: 'Kontakten hittades inte' }).record.error).toEqual({
      kind: 'rejected', httpStatus: 200, code: 'ERROR', message: 'Kontakten hittades inte',
    });
    const ok = apply({ type: 'posted', httpStatus: 200, body: [], note: 'Redan betald' }, 'resend', leased({ error: { kind: 'rate_limited', message: 'x' } }));
    expect(ok.record.result).toEqual({ httpStatus: 200, body: [], note: 'Redan betald' });
    expect(ok.record.error).toBeUndefined();
  });

  it('bounds the history', () => {
    const long = leased({ history: Array.from({ length: 60 }, (_, i) => ({ at: 'x', event: `e${i}` })) });
    const d = apply({ type: 'posted', httpStatus: 200, body: [] }, 'resend', long);
    expect(d.record.history).toHaveLength(50);
    expect(d.record.history.at(-1)?.event).toBe('posted');
  });
});
