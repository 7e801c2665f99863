import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../shared/config.js';
import { payloadHash } from '../../../shared/core/canonical.js';
import { decide, decideContext, previewOperatorAction, type Decision, type PaymentEvent } from '../../../shared/core/decide.js';
import { DEFAULT_SETTINGS } from '../../../shared/core/lifecycle.js';
import type { AmbiguityPolicy, PaymentRecord } from '../../../shared/core/types.js';
import { DESCRIPTIONS } from '../../../shared/systems/descriptions.js';
import { ambiguityOf } from '../../../shared/systems/holdings.js';

const NOW = Date.parse('2026-11-22T12:00:00Z');
const REQUEST = { amount: 100 };

function record(over: Partial<PaymentRecord> = {}): PaymentRecord {
  return {
    pk: 'nif-membership#1#1:k', system: 'nif-membership', tenant: '1', key: '1:k', status: 'held', version: 3, revision: 1,
    payloadHash: payloadHash(REQUEST), request: REQUEST, caller: 'alice', attempts: 1, failures: 0, budgetFrom: NOW - 1_000,
    nextAttemptAt: NOW - 1_000, checkpoints: {}, history: [], correlationId: 'c',
    createdAt: new Date(NOW - 1_000).toISOString(), updatedAt: new Date(NOW - 1_000).toISOString(), ttl: 1,
    ...over,
  };
}

let minted = 0;
const ctx = (system = 'nif-membership', policy: AmbiguityPolicy = 'reconcile', now = NOW) =>
  decideContext(system, { now, policy, settings: DEFAULT_SETTINGS, random: () => 0.5, fence: () => ({ id: 'f', n: minted++ }) });
const write = (d: Decision) => {
  if (d.kind !== 'write') throw new Error(`expected a write, got ${d.kind}: ${d.said}`);
  return d;
};
const unconfirmed = { since: NOW - 60_000, at: NOW - 1_000, revision: 1 };

describe('decide: what the downstream may hold survives and is looked at first', () => {
  it('an ambiguous answer marks the record unconfirmed (reconcile and park), never for a resend system', () => {
    const sent = (policy: AmbiguityPolicy) => write(decide(record({ status: 'retrying', fence: { id: 'a', n: 1 } }), { type: 'sent', outcome: { type: 'ambiguous', message: '500' } }, ctx('nif-membership', policy))).record;
    expect(sent('reconcile')).toMatchObject({ status: 'reconciling', unconfirmed: { since: NOW, at: NOW, revision: 1 } });
    expect(sent('park')).toMatchObject({ status: 'unknown', unconfirmed: { at: NOW } });
    expect(sent('resend').unconfirmed).toBeUndefined();
  });

  it('a config error while reconciling holds the payment and keeps the mark; a redrive then reconciles, no sooner than the reconcile delay', () => {
    const held = write(decide(record({ status: 'reconciling', unconfirmed, fence: { id: 'a', n: 1 } }), { type: 'not-sent', outcome: { type: 'auth', config: true, message: 'NIF_MAX_RPS' } }, ctx())).record;
    expect(held).toMatchObject({ status: 'held', unconfirmed });
    const d = write(decide(held, { type: 'redrive', by: 'ops' }, ctx()));
    expect(d.record.status).toBe('reconciling');
    expect(d.wakeAt).toBe(unconfirmed.at + DEFAULT_SETTINGS.reconcileDelayMs + DEFAULT_SETTINGS.clockSkewMs);
    expect(d.record.unconfirmed).toEqual(unconfirmed);
  });

  it('a parking system that may hold it is refused a redrive or repost, naming what to do', () => {
    const r = record({ system: 'nif', pk: 'nif#default#k', unconfirmed });
    for (const event of [{ type: 'redrive', by: 'ops' }, { type: 'repost', by: 'ops', evidence: 'x' }] as PaymentEvent[]) {
      const d = decide(r, event, ctx('nif', 'park'));
      expect(d.kind).toBe('refuse');
      expect(d.said).toMatch(/resolve/);
    }
  });

  it('resolve --not-posted clears the mark and the unconfirmed steps; repost then sends', () => {
    const r = record({ system: 'brp', pk: 'brp#default#s', status: 'unknown', unconfirmed, checkpoints: { orderRequested: true } });
    const failed = write(decide(r, { type: 'resolve', as: 'not-posted', by: 'ops', evidence: 'no open order' }, ctx('brp'))).record;
    expect(failed.status).toBe('failed');
    expect(failed.unconfirmed).toBeUndefined();
    expect(failed.checkpoints).toEqual({});
    expect(write(decide(failed, { type: 'repost', by: 'ops', evidence: 'x' }, ctx('brp'))).record).toMatchObject({ status: 'retrying', revision: 2 });
  });

  it('a BRP correction is refused while BRP holds an order or receipt; a Kontantanalys one keeps its object', () => {
    const brp = record({ system: 'brp', pk: 'brp#default#s', status: 'failed', checkpoints: { orderId: 12, items: { 0: 5 }, receiptId: 7 } });
    const refused = decide(brp, { type: 'delivered', request: { amount: 200 }, hash: payloadHash({ amount: 200 }), caller: 'alice' }, ctx('brp'));
    expect(refused).toMatchObject({ kind: 'refuse', answer: 'downstream-holds' });
    expect(refused.said).toMatch(/order 12.*receipt 7/);
    const ka = record({ system: 'kontantanalys', pk: 'kontantanalys#default#t', status: 'held', checkpoints: { remoteId: 99 } });
    const revised = write(decide(ka, { type: 'delivered', request: { amount: 200 }, hash: payloadHash({ amount: 200 }), caller: 'alice' }, ctx('kontantanalys')));
    expect(revised.record).toMatchObject({ revision: 2, checkpoints: { remoteId: 99 } });
  });

  it('a repost keeps what the downstream holds (it resumes) and says so', () => {
    const brp = record({ system: 'brp', pk: 'brp#default#s', status: 'held', checkpoints: { orderId: 12, items: { 0: 5 } } });
    const d = write(decide(brp, { type: 'repost', by: 'ops', evidence: 'x' }, ctx('brp')));
    expect(d.record.checkpoints).toEqual({ orderId: 12, items: { 0: 5 } });
    expect(d.said).toMatch(/resume from what brp holds \(order 12, 1 order row\)/);
  });

  it('an earlier revision\'s body answers as that revision, never a new one', () => {
    const v1 = { amount: 50 };
    const r = record({ status: 'held', revision: 2, revisions: [{ revision: 1, status: 'failed', payloadHash: payloadHash(v1), attempts: 1, endedAt: 'x', reason: 'corrected' }] });
    expect(decide(r, { type: 'delivered', request: v1, hash: payloadHash(v1), caller: 'alice' }, ctx())).toMatchObject({ kind: 'none', answer: 'earlier-revision', revision: { revision: 1 } });
  });

  it('a wake-up never reads back before the ambiguous answer plus the reconcile delay; a retry may go early', () => {
    const reconciling = record({ status: 'reconciling', unconfirmed: { ...unconfirmed, at: NOW - 100 }, nextAttemptAt: NOW - 100 + DEFAULT_SETTINGS.reconcileDelayMs, fence: { id: 'a', n: 1 } });
    expect(decide(reconciling, { type: 'woken', now: true }, ctx())).toMatchObject({ kind: 'defer', until: NOW - 100 + DEFAULT_SETTINGS.reconcileDelayMs + DEFAULT_SETTINGS.clockSkewMs });
    const retrying = record({ status: 'retrying', nextAttemptAt: NOW + 60_000, fence: { id: 'a', n: 1 } });
    expect(decide(retrying, { type: 'woken', now: true }, ctx()).kind).toBe('attempt');
    expect(decide(retrying, { type: 'woken' }, ctx()).kind).toBe('defer');
  });

  it('a token endpoint that limits leaves a reconciling payment reconciling', () => {
    const r = record({ status: 'reconciling', unconfirmed, fence: { id: 'a', n: 1 } });
    expect(write(decide(r, { type: 'not-sent', outcome: { type: 'rate_limited', message: '429', waitMs: 2_000 } }, ctx())).record).toMatchObject({ status: 'reconciling', unconfirmed, nextAttemptAt: NOW + 2_000 });
  });

  it('a late success is recorded for its own revision only', () => {
    const r = record({ status: 'retrying', revision: 2, fence: { id: 'a', n: 1 } });
    expect(write(decide(r, { type: 'late-posted', revision: 1, attempts: 1 }, ctx())).record).toMatchObject({ status: 'unknown', revision: 2 });
    expect(write(decide(r, { type: 'late-posted', revision: 2, attempts: 1 }, ctx())).record).toMatchObject({ status: 'posted', revision: 2 });
  });

  it('the preview says what the downstream may hold and what the action will do', () => {
    const p = previewOperatorAction(record({ unconfirmed }), 'redrive', ctx());
    expect(p.allowed).toBe(true);
    expect(p.mayHold).toMatch(/maybe revision 1/);
    expect(p.will).toMatch(/^reconcile first/);
    expect(previewOperatorAction(record(), 'redrive', ctx()).will).toBe('send it to nif-membership');
  });
});

describe('holdings: the operator\'s policy table', () => {
  it('agrees with every system description', () => {
    const config = parseConfig({});
    for (const describe of DESCRIPTIONS) expect(ambiguityOf(describe.system), describe.system).toBe(describe(config).ambiguity);
  });
});
