import { describe, expect, it } from 'vitest';
import { applyOutcome, capBody, capText, DEFAULT_SETTINGS, MAX_ERROR_TEXT, newRevision, reconcileLater, scheduleOf, type OutcomeContext } from '../../../shared/core/lifecycle.js';
import type { AmbiguityPolicy, Outcome, PaymentRecord } from '../../../shared/core/types.js';

const NOW = Date.parse('2026-11-22T12:00:00Z');
const HOUR = 3_600_000;

function record(over: Partial<PaymentRecord> = {}): PaymentRecord {
  return {
    pk: 'cambio#default#c1', system: 'cambio', tenant: 'default', key: 'c1', status: 'retrying', version: 3, revision: 1,
    payloadHash: 'h', request: {}, attempts: 0, failures: 0, budgetFrom: NOW - 1_000, fence: { id: 'w.a', n: 1 },
    nextAttemptAt: NOW, checkpoints: {}, history: [],
    correlationId: 'c', createdAt: new Date(NOW - 1_000).toISOString(), updatedAt: new Date(NOW - 1_000).toISOString(), ttl: 1,
    ...over,
  };
}

let minted = 0;
const ctx = (policy: AmbiguityPolicy = 'resend', settings = DEFAULT_SETTINGS): OutcomeContext => ({ now: NOW, policy, settings, random: () => 0.5, fence: () => ({ id: 'w.b', n: minted++ }) });
const apply = (outcome: Outcome, policy: AmbiguityPolicy = 'resend', rec = record()) => applyOutcome(rec, outcome, ctx(policy));

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
    expect(d.wakeAt !== undefined).toBe(wakes);
    // A record that will be attempted again carries a new fence (a new right to one attempt); a settled one none.
    expect(d.record.fence !== undefined).toBe(wakes);
    if (wakes) {
      expect(d.record.fence).not.toEqual({ id: 'w.a', n: 1 });
      expect(d.record.nextAttemptAt).toBe(d.wakeAt);
    }
  });

  it('a 429 neither counts as a failure nor spends the budget, and waits the stated time', () => {
    const old = record({ failures: 7, budgetFrom: NOW - 1_000 * HOUR });
    const d = apply({ type: 'rate_limited', waitMs: 5_000, message: 'Try again in 5 seconds.' }, 'resend', old);
    expect(d.record.failures).toBe(7);
    expect(d.record.status).toBe('retrying');
    expect(d.wakeAt).toBeGreaterThanOrEqual(NOW + 5_000);
  });

  it('the retry budget is time: many failures within it keep retrying (issue 10: two minutes of 5xx failed payments)', () => {
    const d = apply({ type: 'retryable', message: 'HTTP 503' }, 'resend', record({ failures: 40, budgetFrom: NOW - 5 * 60_000 }));
    expect(d.record.status).toBe('retrying');
    expect(d.record.failures).toBe(41);
    // Capped exponential backoff: never more than 15 minutes between tries.
    expect((d.wakeAt as number) - NOW).toBeLessThanOrEqual(15 * 60_000);
  });

  it('a spent budget holds the payment for an operator (alarmed), never fails it', () => {
    const spent = record({ budgetFrom: NOW - DEFAULT_SETTINGS.budgetMs });
    for (const outcome of [{ type: 'retryable', message: 'connection refused' }, { type: 'ambiguous', message: 'HTTP 502' }] as Outcome[]) {
      const d = apply(outcome, 'resend', spent);
      expect(d.record.status).toBe('held');
      expect(d.record.error?.kind).toBe('budget');
      expect(d.record.error?.message).toMatch(/retry budget of 72 h ran out after 1 attempts; last: /);
      expect(d.wakeAt).toBeUndefined();
    }
  });

  it('uses the per-system budget when one is configured', () => {
    const settings = { ...DEFAULT_SETTINGS, budgetBySystem: { cambio: HOUR } };
    const d = applyOutcome(record({ budgetFrom: NOW - 2 * HOUR }), { type: 'retryable', message: 'x' }, ctx('resend', settings));
    expect(d.record.status).toBe('held');
  });

  it('a reconciliation that keeps failing past the budget parks unknown (it may have been sent)', () => {
    const d = reconcileLater(record({ status: 'reconciling', budgetFrom: NOW - DEFAULT_SETTINGS.budgetMs }), 'read API unreachable', ctx('reconcile'));
    expect(d.record.status).toBe('unknown');
    const soon = reconcileLater(record({ status: 'reconciling' }), 'read API unreachable', ctx('reconcile'));
    expect(soon.record.status).toBe('reconciling');
    expect(soon.wakeAt).toBeGreaterThan(NOW);
  });

  it('keeps the downstream code and message of a rejection, and the comment of a success', () => {
    expect(apply({ type: 'rejected', httpStatus: 200, code: 'ERROR', message: 'Kontakten hittades inte' }).record.error).toEqual({
      kind: 'rejected', httpStatus: 200, code: 'ERROR', message: 'Kontakten hittades inte',
    });
    const ok = apply({ type: 'posted', httpStatus: 200, body: [], note: 'Redan betald' }, 'resend', record({ error: { kind: 'rate_limited', message: 'x' } }));
    expect(ok.record.result).toEqual({ httpStatus: 200, body: [], note: 'Redan betald' });
    expect(ok.record.error).toBeUndefined();
  });

  it('caps downstream texts and bodies so a record can always be written (issue 10: a huge error body broke the settle)', () => {
    const huge = 'x'.repeat(500_000);
    const d = apply({ type: 'rejected', httpStatus: 400, message: huge, body: huge });
    expect(d.record.error?.message.length).toBeLessThan(MAX_ERROR_TEXT + 60);
    expect(d.record.error?.message).toMatch(/\[cut: 498000 more characters\]$/);
    expect(JSON.stringify(d.record).length).toBeLessThan(10_000);
    expect(capText('short')).toBe('short');
    expect(capBody({ a: 1 })).toEqual({ a: 1 });
    expect(capBody(huge)).toMatchObject({ truncated: true, bytes: 500_000 });
  });

  it('bounds the history', () => {
    const long = record({ history: Array.from({ length: 60 }, (_, i) => ({ at: 'x', event: `e${i}` })) });
    const d = apply({ type: 'posted', httpStatus: 200, body: [] }, 'resend', long);
    expect(d.record.history).toHaveLength(50);
    expect(d.record.history.at(-1)?.event).toBe('posted');
  });

  it('a new revision keeps the earlier one summarised, and starts budget, attempts and progress afresh', () => {
    const failed = record({ status: 'failed', attempts: 3, failures: 2, budgetFrom: NOW - HOUR, checkpoints: { orderId: 7 }, reconcileResends: 1, error: { kind: 'rejected', message: '3009' } });
    const r = newRevision(failed, { fixed: true }, NOW, 'corrected', 'revised');
    expect(r).toMatchObject({ status: 'retrying', revision: 2, attempts: 0, failures: 0, budgetFrom: NOW, checkpoints: {}, request: { fixed: true } });
    expect(r.reconcileResends).toBeUndefined();
    expect(r.error).toBeUndefined();
    expect(r.payloadHash).not.toBe('h');
    expect(r.revisions).toEqual([{ revision: 1, status: 'failed', payloadHash: 'h', attempts: 3, error: { kind: 'rejected', message: '3009' }, endedAt: new Date(NOW).toISOString(), reason: 'corrected' }]);
  });

  it('a repost (the same request again) keeps the hash intake made, whatever key the operator\'s command has', () => {
    const failed = record({ status: 'failed', request: { a: 1 } });
    expect(newRevision(failed, failed.request, NOW, 'reposted by op', 'reposted').payloadHash).toBe(failed.payloadHash);
    expect(newRevision(failed, { a: 1 }, NOW, 'corrected', 'revised').payloadHash).not.toBe(failed.payloadHash);
    // Personal data dropped after the send (Cambio's patient): what a repost sends is not what the hash stood for.
    const trimmed = record({ status: 'failed', request: { a: 1, patientGiven: true }, requestTrimmed: true });
    const reposted = newRevision(trimmed, trimmed.request, NOW, 'reposted by op', 'reposted');
    expect(reposted.payloadHash).not.toBe(trimmed.payloadHash);
    expect(reposted.requestTrimmed).toBeUndefined();
  });

  it('shows the schedule: next try, tries so far, budget left', () => {
    expect(scheduleOf(record({ attempts: 4, failures: 2, budgetFrom: NOW - HOUR, nextAttemptAt: NOW + 30_000 }), DEFAULT_SETTINGS, NOW)).toEqual({
      nextAttemptAt: new Date(NOW + 30_000).toISOString(),
      tries: 4,
      failuresInARow: 2,
      budgetEndsAt: new Date(NOW + 71 * HOUR).toISOString(),
      budgetLeftSeconds: 71 * 3600,
    });
  });
});
