import { samePayload } from './canonical.js';
import {
  applyOutcome,
  budgetFor,
  capText,
  newRevision,
  parkedUnknown,
  reconcileLater,
  recordError,
  scheduled,
  settledBase,
  unconfirmedAfter,
  withHistory,
  type OutcomeContext,
} from './lifecycle.js';
import { ambiguityOf, holdingRules, type Holding, type HoldingRules } from '../systems/holdings.js';
import type { ReconcileResult } from '../systems/types.js';
import type { AmbiguityPolicy, Outcome, PaymentRecord, RevisionSummary, Status } from './types.js';

/**
 * A payment's rules in one pure function (issue 19; DESIGN.md, "A payment's rules live in one place"):
 * `decide(record, event, ctx) → decision`. Routes, workers, the sweep, the CLI and the console turn
 * I/O into events and carry out the decision (a conditional write, a send or read, an enqueue, an
 * answer); they decide nothing themselves. What the downstream may already hold is state on the
 * record (`unconfirmed`, and the checkpoints `shared/systems/holdings.ts` reads), and every path that
 * could send again looks at it first.
 */

export type PaymentEvent =
  /** One send's outcome (a queued or in-process attempt that held the record). */
  | { type: 'sent'; outcome: Outcome }
  /** The attempt stopped before anything was sent (credentials, configuration, a spent budget while waiting). */
  | { type: 'not-sent'; outcome: Outcome }
  /** A reconcile read's answer. */
  | { type: 'reconciled'; result: ReconcileResult }
  /** An attempt that may have sent did not finish (its lease or fence deadline passed): ambiguous. */
  | { type: 'stranded'; why: string }
  /** A queue message reached a worker; `now` when it asks to be tried before its time (a probe, a wake-up after an outage). */
  | { type: 'woken'; now?: boolean }
  /** A success recorded by an attempt that outlived its deadline, after the record moved on. */
  | { type: 'late-posted'; revision: number; result?: PaymentRecord['result']; attempts: number }
  /** The operator's actions. */
  | { type: 'redrive'; by: string }
  | { type: 'repost'; by: string; evidence: string }
  | { type: 'resolve'; as: 'posted' | 'not-posted'; by: string; evidence: string }
  /** A caller's delivery for a key that has a record. */
  | { type: 'delivered'; request: Record<string, unknown>; hash: string; caller?: string };

export type DeliveryAnswer = 'duplicate' | 'foreign' | 'conflict' | 'earlier-revision' | 'downstream-holds';

export type Decision =
  /** Write `record` conditionally on the version the event was decided from; then wake at `wakeAt`. */
  | { kind: 'write'; record: PaymentRecord; wakeAt?: number; said: string }
  /** Nothing changes. `answer` tells a caller's delivery what it is. */
  | { kind: 'none'; answer?: DeliveryAnswer; revision?: RevisionSummary; said: string }
  /** Woken before its time: sleep again until `until`. */
  | { kind: 'defer'; until: number; said: string }
  /** Woken when due: the holder of the message makes its attempt (a send, or a reconcile read). */
  | { kind: 'attempt'; said: string }
  /** Refused: nothing is written or sent; `said` is the sentence the operator or caller reads. */
  | { kind: 'refuse'; said: string; answer?: DeliveryAnswer; holdings?: Holding[] };

export interface DecideContext extends OutcomeContext {
  rules: HoldingRules;
}

/** The context a driver passes: the system's ambiguity policy and holding rules, the clock, random and fences. */
export function decideContext(system: string, ctx: OutcomeContext): DecideContext {
  return { ...ctx, rules: holdingRules(system) };
}

/** The decision of an event that always writes (a send's outcome, a reconcile's answer, a strand). */
export function written(d: Decision): Extract<Decision, { kind: 'write' }> {
  if (d.kind !== 'write') throw new Error(`the transition function decided ${d.kind} where a write was due: ${d.said}`);
  return d;
}

/** The statuses an operator action may start from. */
export const OPERATOR_FROM: Record<'redrive' | 'repost' | 'resolve', readonly Status[]> = {
  redrive: ['held'],
  repost: ['failed', 'held', 'unknown'],
  resolve: ['unknown', 'held'],
};

/** History entries that say a send may have reached the downstream without an answer. */
const UNANSWERED = new Set(['ambiguous', 'stranded', 'reconcile_inconclusive']);
/** History entries after which nothing sent before them is unconfirmed any more. */
const ANSWERED = new Set(['posted', 'reconciled', 'resolved_posted', 'resolved_not_posted', 'received']);

/**
 * What may have reached the downstream unconfirmed: the record's own mark; else, for a record written
 * before the mark existed (5795570 and earlier), an unknown status, or a history whose latest word on a
 * send is an ambiguous answer or a strand that nothing answered since (the review of issue 19: such a
 * held record, issue 19's defect 1 as it is in a live table, was otherwise redriven straight into a send).
 * Systems that simply resend (Cambio) never mark.
 */
export function unconfirmedOf(record: PaymentRecord, policy: AmbiguityPolicy = ambiguityOf(record.system)): PaymentRecord['unconfirmed'] {
  if (record.unconfirmed) return record.unconfirmed;
  if (record.status === 'unknown') {
    const at = record.nextAttemptAt ?? Date.parse(record.updatedAt);
    return { since: at, at, revision: record.revision ?? 1 };
  }
  if (record.status === 'posted' || policy === 'resend') return undefined;
  for (let i = record.history.length - 1; i >= 0; i--) {
    const entry = record.history[i] as (typeof record.history)[number];
    if (ANSWERED.has(entry.event)) return undefined;
    if (UNANSWERED.has(entry.event)) {
      const at = Date.parse(entry.at);
      return { since: at, at, revision: record.revision ?? 1 };
    }
  }
  return undefined;
}

/**
 * The earliest a reconcile read may run: the downstream's read side has had the reconcile delay since the
 * ambiguous answer. That answer's time is another machine's clock, so the stated skew is added: a reader
 * whose clock runs ahead would otherwise read back up to `clockSkewMs` early.
 */
function readableFrom(record: PaymentRecord, ctx: DecideContext): number {
  const u = unconfirmedOf(record, ctx.policy);
  return Math.max(ctx.now, u ? u.at + ctx.settings.reconcileDelayMs + ctx.settings.clockSkewMs : ctx.now);
}

/** A sentence naming what the downstream holds or may hold, for operators and callers. */
export function holdingsText(record: PaymentRecord, rules: HoldingRules = holdingRules(record.system)): string {
  const parts: string[] = [];
  const u = unconfirmedOf(record);
  if (record.status === 'posted') parts.push('the payment (posted)');
  if (u) parts.push(`maybe revision ${u.revision} (${Number.isFinite(u.at) ? `an answer at ${new Date(u.at).toISOString()}` : 'an earlier answer'} left it unconfirmed)`);
  for (const h of rules.holdings(record.checkpoints ?? {})) parts.push(h.confirmed ? h.what : `maybe ${h.what}`);
  return parts.length > 0 ? parts.join('; ') : 'nothing';
}

/** The record brought back to `reconciling`: the next step reads the downstream, no sooner than its read side allows. */
function reconcileFirst(record: PaymentRecord, ctx: DecideContext, event: string, why: string): Decision {
  const at = readableFrom(record, ctx);
  const unconfirmed = unconfirmedOf(record, ctx.policy);
  const { error: _e, ...rest } = scheduled({ ...record, status: 'reconciling', ...(unconfirmed ? { unconfirmed } : {}) }, ctx.now, at, ctx.fence());
  return {
    kind: 'write',
    record: { ...rest, failures: 0, budgetFrom: ctx.now, reconcileResends: 0, history: withHistory(record, ctx.now, event, why) },
    wakeAt: at,
    said: `reconcile first: read ${record.system} back${at > ctx.now ? ` after ${new Date(at).toISOString()}` : ''}, and send only if it does not hold the payment`,
  };
}

/** An operator's action on an active or leased record is refused: someone else is working on it. */
function busy(record: PaymentRecord, now: number): string | undefined {
  if (record.leaseUntil !== undefined && record.leaseUntil > now) return 'an attempt is in flight right now';
  return undefined;
}

function notFrom(record: PaymentRecord, allowed: readonly Status[]): string | undefined {
  return allowed.includes(record.status) ? undefined : `it is ${record.status}, not ${allowed.join(' or ')}`;
}

export function decide(record: PaymentRecord, event: PaymentEvent, ctx: DecideContext): Decision {
  const { now } = ctx;
  switch (event.type) {
    case 'sent': {
      const d = applyOutcome(record, event.outcome, ctx);
      return { kind: 'write', record: d.record, ...(d.wakeAt !== undefined ? { wakeAt: d.wakeAt } : {}), said: d.record.status };
    }
    case 'not-sent': {
      const outcome = event.outcome;
      // Nothing was sent: not an attempt, and a record being reconciled stays so (what it may hold is unchanged).
      if (outcome.type === 'auth' || outcome.type === 'rejected' || outcome.type === 'posted' || outcome.type === 'ambiguous') {
        const d = applyOutcome({ ...record, attempts: record.attempts - 1 }, outcome, ctx);
        return { kind: 'write', record: d.record, ...(d.wakeAt !== undefined ? { wakeAt: d.wakeAt } : {}), said: d.record.status };
      }
      const spent = now - record.budgetFrom >= budgetFor(ctx.settings, record.system);
      if (spent) {
        const message = `the retry budget of ${Math.round(budgetFor(ctx.settings, record.system) / 3_600_000)} h ran out before it could be ${record.status === 'reconciling' ? 'read back' : 'sent'}; last: ${capText(outcome.message)}`;
        return {
          kind: 'write',
          record: { ...settledBase(record, now), status: 'held', nextAttemptAt: now, error: { kind: 'budget', message: capText(message) }, history: withHistory(record, now, 'held', `${message}. Redrive it once the downstream works again`) },
          said: 'held',
        };
      }
      const wakeAt = now + (outcome.waitMs ?? 5_000);
      return {
        kind: 'write',
        record: { ...scheduled(record, now, wakeAt, ctx.fence()), error: recordError(outcome.type, outcome), history: withHistory(record, now, 'not_sent', capText(outcome.message, 300)) },
        wakeAt,
        said: record.status,
      };
    }
    case 'stranded': {
      const d = applyOutcome({ ...record, history: withHistory(record, now, 'stranded', event.why) }, { type: 'ambiguous', message: event.why }, ctx);
      return { kind: 'write', record: d.record, ...(d.wakeAt !== undefined ? { wakeAt: d.wakeAt } : {}), said: d.record.status };
    }
    case 'reconciled':
      return reconciled(record, event.result, ctx);
    case 'woken': {
      // A record being reconciled is never read back before its read side caught up, whoever wakes it.
      // A retry may run up to a second early (SQS delays are whole seconds); a read-back never does.
      const reading = record.status === 'reconciling';
      const due = reading ? Math.max(record.nextAttemptAt ?? now, readableFrom(record, ctx)) : event.now ? now : (record.nextAttemptAt ?? now);
      if (due > now + (reading ? 0 : 1_000)) return { kind: 'defer', until: due, said: `not due until ${new Date(due).toISOString()}` };
      return { kind: 'attempt', said: record.status === 'reconciling' ? 'reconcile' : 'send' };
    }
    case 'late-posted': {
      if (record.status === 'posted') {
        if ((record.revision ?? 1) === event.revision) return { kind: 'none', said: 'already posted' };
        // Both revisions reached the downstream: nothing can take one back from here, so it is said where
        // an operator looks (the history, the status route, an alarm on the metric the driver counts).
        const why = `revision ${event.revision} was also posted, late, by an attempt that outlived its deadline, after revision ${record.revision ?? 1} was posted: ${record.system} may hold both; check it there and reverse one`;
        return { kind: 'write', record: { ...settledBase(record, now), history: withHistory(record, now, 'posted_twice', why) }, said: 'posted twice' };
      }
      if ((record.revision ?? 1) !== event.revision) {
        // An older revision reached the downstream after a newer one started: neither may be sent again
        // until an operator looks. Nothing is recorded as posted for the wrong revision.
        const why = `revision ${event.revision} was posted late, by an attempt that outlived its deadline, while revision ${record.revision ?? 1} was ${record.status}; check what ${record.system} holds before resolving`;
        return { kind: 'write', record: { ...parkedUnknown({ ...record, unconfirmed: unconfirmedAfter(record, now) }, now, why) }, said: 'unknown' };
      }
      const { error: _e, unconfirmed: _u, ...rest } = settledBase(record, now);
      return {
        kind: 'write',
        record: { ...rest, status: 'posted', attempts: Math.max(record.attempts, event.attempts), ...(event.result ? { result: event.result } : {}), history: withHistory(record, now, 'posted', 'recorded late by an attempt that outlived its deadline') },
        said: 'posted',
      };
    }
    case 'redrive': {
      const refused = notFrom(record, OPERATOR_FROM.redrive) ?? busy(record, now);
      if (refused) return { kind: 'refuse', said: refused };
      if (unconfirmedOf(record, ctx.policy)) {
        if (ctx.policy === 'reconcile') return reconcileFirst(record, ctx, 'redriven', `by ${event.by}, after the cause was fixed; ${record.system} may hold it: reconciling before any send`);
        if (ctx.policy === 'park') return { kind: 'refuse', said: `${record.system} may already hold it (${holdingsText(record, ctx.rules)}) and cannot be asked: check there, then resolve it (--posted or --not-posted)` };
      }
      const { error: _e, ...rest } = scheduled({ ...record, status: 'retrying' }, now, now, ctx.fence());
      return { kind: 'write', record: { ...rest, failures: 0, budgetFrom: now, history: withHistory(record, now, 'redriven', `by ${event.by}, after the cause was fixed`) }, wakeAt: now, said: sendsSaid(record, ctx) };
    }
    case 'repost': {
      const refused = notFrom(record, OPERATOR_FROM.repost) ?? busy(record, now);
      if (refused) return { kind: 'refuse', said: refused };
      if (unconfirmedOf(record, ctx.policy)) {
        if (ctx.policy === 'reconcile') return reconcileFirst(record, ctx, 'reposted', `by ${event.by}: ${event.evidence}; ${record.system} may hold it: reconciling before any send`);
        if (ctx.policy === 'park') return { kind: 'refuse', said: `${record.system} may already hold it (${holdingsText(record, ctx.rules)}): check there, then resolve it --not-posted with what you found before reposting` };
      }
      const revised = newRevision(record, record.request, now, `reposted by ${event.by}: ${event.evidence}`, 'reposted', record.checkpoints);
      return { kind: 'write', record: scheduled(revised, now, now, ctx.fence()), wakeAt: now, said: sendsSaid(record, ctx) };
    }
    case 'resolve': {
      const refused = notFrom(record, OPERATOR_FROM.resolve) ?? busy(record, now);
      if (refused) return { kind: 'refuse', said: refused };
      if (record.status === 'held' && !unconfirmedOf(record, ctx.policy)) return { kind: 'refuse', said: 'it is held with nothing unconfirmed downstream: redrive it, or repost it' };
      const { error: _e, unconfirmed: _u, ...rest } = settledBase(record, now);
      if (event.as === 'posted') {
        return {
          kind: 'write',
          record: { ...rest, status: 'posted', result: { httpStatus: 0, body: { resolvedBy: event.by, evidence: event.evidence }, note: `resolved as posted by ${event.by}: ${event.evidence}` }, history: withHistory(record, now, 'resolved_posted', `by ${event.by}: ${event.evidence}`) },
          said: 'record it as posted; nothing is sent',
        };
      }
      // The operator established that nothing arrived: the unconfirmed steps are dropped with the mark,
      // so a repost sends (the one place a payment may reach the downstream twice, on the operator's word).
      return {
        kind: 'write',
        record: {
          ...rest,
          status: 'failed',
          checkpoints: ctx.rules.withoutUnconfirmed(record.checkpoints ?? {}),
          error: { kind: 'resolved', message: `resolved as not posted by ${event.by}: ${event.evidence}` },
          history: withHistory(record, now, 'resolved_not_posted', `by ${event.by}: ${event.evidence}`),
        },
        said: 'record it as not posted (failed); nothing is sent until it is reposted',
      };
    }
    case 'delivered':
      return delivered(record, event, ctx);
  }
}

/** What a redrive or repost without anything unconfirmed will do, told from what the downstream holds. */
function sendsSaid(record: PaymentRecord, ctx: DecideContext): string {
  const held = ctx.rules.holdings(record.checkpoints ?? {});
  return held.length > 0 ? `resume from what ${record.system} holds (${held.map((h) => h.what).join(', ')}), sending only the missing steps` : `send it to ${record.system}`;
}

function reconciled(record: PaymentRecord, result: ReconcileResult, ctx: DecideContext): Decision {
  const { now } = ctx;
  switch (result.type) {
    case 'unknowable':
      return { kind: 'write', record: parkedUnknown({ ...record, unconfirmed: record.unconfirmed ?? unconfirmedAfter(record, now) }, now, result.message), said: 'unknown' };
    case 'found': {
      const { error: _e, unconfirmed: _u, ...rest } = settledBase(record, now);
      return {
        kind: 'write',
        record: { ...rest, status: 'posted', failures: 0, result: { httpStatus: 200, body: result.body, note: 'found downstream by reconciliation' }, history: withHistory(record, now, 'posted', 'found downstream by reconciliation; not sent again') },
        said: 'posted',
      };
    }
    case 'absent': {
      const resends = record.reconcileResends ?? 0;
      if (resends >= 1) return { kind: 'write', record: parkedUnknown({ ...record, unconfirmed: record.unconfirmed ?? unconfirmedAfter(record, now) }, now, 'still not found downstream after one re-send'), said: 'unknown' };
      // The read proves it did not arrive: the mark goes, and the payment is sent once more.
      const { unconfirmed: _u, ...rest } = record;
      return {
        kind: 'write',
        record: { ...scheduled({ ...rest, status: 'retrying' }, now, now, ctx.fence()), reconcileResends: resends + 1, history: withHistory(record, now, 'reconciled', 'not found downstream: sending once more') },
        wakeAt: now,
        said: 'retrying',
      };
    }
    case 'inconclusive': {
      const d = reconcileLater(record, result.message, ctx);
      return { kind: 'write', record: d.record, ...(d.wakeAt !== undefined ? { wakeAt: d.wakeAt } : {}), said: d.record.status };
    }
  }
}

/** Statuses whose payment reached nothing for certain, or nothing the caller's correction would double: the key may carry a corrected body. */
const REVISABLE: readonly Status[] = ['failed', 'held'];

function delivered(record: PaymentRecord, event: Extract<PaymentEvent, { type: 'delivered' }>, ctx: DecideContext): Decision {
  if (record.caller && event.caller && record.caller !== event.caller) return { kind: 'none', answer: 'foreign', said: 'the key belongs to another caller' };
  if (samePayload(record.payloadHash, event.request, event.hash)) return { kind: 'none', answer: 'duplicate', said: 'the same payment again: nothing sent' };
  // A body equal to an earlier revision is that revision (a late POS retry, a webhook retried for days): never a new one.
  const earlier = [...(record.revisions ?? [])].reverse().find((r) => samePayload(r.payloadHash, event.request, event.hash));
  if (earlier) return { kind: 'none', answer: 'earlier-revision', revision: earlier, said: `revision ${earlier.revision} of this key, superseded by revision ${record.revision ?? 1}` };
  if (!REVISABLE.includes(record.status)) return { kind: 'none', answer: 'conflict', said: `the key was used for another payment that is ${record.status}` };
  const unconfirmed = unconfirmedOf(record, ctx.policy);
  if (unconfirmed) {
    return {
      kind: 'refuse',
      answer: 'downstream-holds',
      said: `${record.system} may already hold this payment: ${holdingsText(record, ctx.rules)}. A corrected payment could be registered twice: nothing was sent. An operator reconciles it first (paybridge redrive, or payments resolve); send the correction once it is failed.`,
    };
  }
  const held = ctx.rules.holdings(record.checkpoints ?? {});
  if (held.length > 0 && ctx.rules.revision === 'refuse') {
    return {
      kind: 'refuse',
      answer: 'downstream-holds',
      holdings: held,
      said: `${record.system} already holds ${held.map((h) => (h.confirmed ? h.what : `maybe ${h.what}`)).join(', ')} for this key: a corrected body would make another sale beside it, so nothing was sent. Correct or cancel it in ${record.system} itself, or send the new sale under a new key; an operator can complete the stored one with paybridge repost.`,
    };
  }
  const now = ctx.now;
  const checkpoints = ctx.rules.revision === 'reuse' ? (record.checkpoints ?? {}) : {};
  return {
    kind: 'write',
    record: { ...newRevision(record, event.request, now, `the caller sent corrected data after the payment was ${record.status}`, 'revised', checkpoints), ...(event.caller ? { caller: record.caller ?? event.caller } : {}) },
    said: 'a new revision',
  };
}

/** What an operator's action would do to `record` now, said before it is taken (the CLI and the console ask this). */
export function previewOperatorAction(
  record: PaymentRecord,
  action: 'redrive' | 'repost' | 'resolve-posted' | 'resolve-not-posted',
  ctx: DecideContext,
): { allowed: boolean; mayHold: string; will: string; reason?: string } {
  const event: PaymentEvent =
    action === 'redrive' ? { type: 'redrive', by: 'preview' } : action === 'repost' ? { type: 'repost', by: 'preview', evidence: 'preview' } : { type: 'resolve', as: action === 'resolve-posted' ? 'posted' : 'not-posted', by: 'preview', evidence: 'preview' };
  const d = decide(record, event, ctx);
  const mayHold = holdingsText(record, ctx.rules);
  if (d.kind === 'refuse') return { allowed: false, mayHold, will: 'nothing', reason: d.said };
  return { allowed: true, mayHold, will: d.said };
}
