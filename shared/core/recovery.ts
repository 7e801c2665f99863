import { hashId, type Logger } from '../log.js';
import { retryMessage } from '../queue/port.js';
import { LeaseLostError, type ReconcileResult, type SystemModule } from '../systems/types.js';
import { attemptContext, deadlineSignal, engineContext, settle } from './attempt.js';
import type { EngineDeps } from './context.js';
import { decide, written } from './decide.js';
import { scheduled, withHistory } from './lifecycle.js';
import { sqsDelaySeconds } from './retry-policy.js';
import { ACTIVE_STATUSES, type PaymentRecord } from './types.js';

/**
 * The recovery room: attempts that did not finish (a dead worker, a lost message, a restart), systems
 * that failed and recovered, and reconciliation of outcomes that may have reached the downstream.
 */

export interface SweepReport {
  /** Messages put back on the queues (lost or never sent). */
  enqueued: number;
  /** Unfinished attempts whose outcome became ambiguous (handled by each system's policy). */
  stranded: number;
  /** Probes of failing systems. */
  probed: number;
  heldOverAnHour: number;
  /** A consumed fence whose attempt may still be running: look again after this time (boot recovery). */
  recheckAt?: number;
}

/**
 * Every minute (and at boot of the local stack): the records of each system whose wake-up is overdue.
 * - An in-process attempt past its lease: if it was sending, its outcome is ambiguous (the system's
 *   policy decides); if it never sent, the payment is simply due again.
 * - A queued attempt whose fence was never consumed: its message was lost (or the local queue died with
 *   the process), so it is sent again with the same fence; a duplicate of a message still queued is
 *   harmless, because only one of them can consume the fence.
 * - A queued attempt whose fence was consumed and whose deadline passed without an outcome: ambiguous.
 * Records still waiting behind their queue's backlog are left alone (`boot` skips that check: the
 * local queue is empty at boot). `previousRunEnded` (the local stack's first sweep at boot, before it
 * takes requests: the process that held the data directory is gone, dynalite's lock says so) treats
 * every lease and fence deadline still running as ended, rather than waiting up to an attempt's
 * deadline for an attempt that died with that process.
 */
export interface SweepOptions {
  boot?: boolean;
  previousRunEnded?: boolean;
  limit?: number;
}

export async function sweep(deps: EngineDeps, systems: readonly string[], opts: SweepOptions = {}): Promise<SweepReport> {
  const report: SweepReport = { enqueued: 0, stranded: 0, probed: 0, heldOverAnHour: 0 };
  await Promise.all(
    systems.map(async (system) => {
      const module = deps.systems(system);
      if (!module) return;
      try {
        const r = await sweepSystem(deps, module, opts);
        report.enqueued += r.enqueued;
        report.stranded += r.stranded;
        report.probed += r.probed;
        report.heldOverAnHour += r.heldOverAnHour;
        if (r.recheckAt !== undefined) report.recheckAt = Math.max(report.recheckAt ?? 0, r.recheckAt);
      } catch (err) {
        // One system's trouble (its configuration, its queue) must not stop the others' recovery.
        deps.log.error('sweep of a system failed', { system, error: err });
      }
    }),
  );
  if (report.enqueued + report.stranded > 0) deps.log.warn('sweep recovered records', { ...report });
  return report;
}

async function sweepSystem(deps: EngineDeps, module: SystemModule, opts: SweepOptions): Promise<SweepReport> {
  const report: SweepReport = { enqueued: 0, stranded: 0, probed: 0, heldOverAnHour: 0 };
  const system = module.name;
  const now = deps.clock();
  const grace = opts.boot ? 0 : deps.settings.sweepGraceMs;
  const log = deps.log.child({ system });
  if (opts.previousRunEnded) {
    try {
      await deps.pacer.endPreviousRun(system);
    } catch (err) {
      // Only a wait: the slots the previous process booked are simply waited out.
      log.warn('rate limiter not reset at boot', { error: err });
    }
  }
  // At boot every active record counts, due or not: the local queue died with the previous process,
  // so even a wake-up due in an hour has no message any more.
  const overdue = await deps.store.due(system, opts.boot ? Number.MAX_SAFE_INTEGER : now - grace, opts.limit ?? (opts.boot ? 10_000 : 500));
  if (overdue.length > 0) {
    let rate = 1;
    try {
      rate = module.maxPerSecond();
    } catch {
      // An invalid configuration: every queued payment of this system is due for its held outcome anyway.
    }
    // Messages visible on the queue right now explain a wait of about depth / rate.
    const depth = opts.boot ? 0 : ((await deps.queue.depth?.(system)) ?? 0);
    const backlogMs = (depth / Math.max(rate, 0.01)) * 1000;
    const records = await deps.store.getMany(overdue.map((o) => o.pk));
    const fences = new Map<string, Promise<Map<number, number>>>();
    for (const { pk } of overdue) {
      const record = records.get(pk);
      if (!record || !ACTIVE_STATUSES.includes(record.status)) continue;
      const rlog = log.child({ ref: hashId(pk), correlationId: record.correlationId });
      if (record.leaseUntil !== undefined) {
        // The lease was written by another machine's clock: it counts as ended only past the stated skew.
        const leaseEnds = record.leaseUntil + deps.settings.clockSkewMs;
        if (leaseEnds > now && !opts.previousRunEnded) {
          // An in-process attempt may still be running: look again once its lease has ended.
          report.recheckAt = Math.max(report.recheckAt ?? 0, leaseEnds);
          continue;
        }
        if (record.sending) {
          report.stranded++;
          await strand(deps, module, record, 'an in-process attempt did not finish (its invocation ended while sending)', rlog);
        } else {
          await requeue(deps, record, 'an in-process attempt ended before sending', rlog);
          report.enqueued++;
        }
        continue;
      }
      if (!record.fence) {
        // Written by an earlier version of paybridge (no fence): give it one and queue it.
        await requeue(deps, record, 'queued again by the sweep', rlog);
        report.enqueued++;
        continue;
      }
      if (!opts.boot && now - (record.nextAttemptAt ?? now) < backlogMs + deps.settings.sweepGraceMs) continue;
      const fence = record.fence;
      let consumed = fences.get(fence.id);
      if (!consumed) {
        consumed = deps.fences.inspect(fence.id);
        fences.set(fence.id, consumed);
      }
      const deadline = (await consumed).get(fence.n);
      if (deadline === undefined) {
        await deps.queue.send(retryMessage(record, 'sweep'), sqsDelaySeconds(record.nextAttemptAt ?? now, now));
        report.enqueued++;
      } else if (deadline + deps.settings.settleMarginMs + deps.settings.clockSkewMs <= now || opts.previousRunEnded) {
        report.stranded++;
        await strand(deps, module, record, 'a queued attempt did not finish (its worker died or timed out)', rlog);
      } else {
        // Still within its deadline (plus the time to record its outcome, and the clocks' stated skew,
        // since the deadline is the worker's clock and `now` the sweep's): look again after that.
        report.recheckAt = Math.max(report.recheckAt ?? 0, deadline + deps.settings.settleMarginMs + deps.settings.clockSkewMs);
      }
    }
    const late = overdue.filter((o) => o.at <= now - grace);
    if (late.length > 0) {
      deps.metrics.count(system, 'overdue_records', late.length);
      deps.metrics.seconds(system, 'oldest_overdue_age', (now - Math.min(...late.map((o) => o.at))) / 1000);
    }
  }
  if (report.stranded > 0) deps.metrics.count(system, 'stranded', report.stranded);
  report.probed = await probe(deps, module, log);
  // Held payments are counted every fifth minute (and at boot): the alarm on them looks at five-minute
  // periods, and the count costs one query per shard.
  if (opts.boot || Math.floor(now / 60_000) % 5 === 0) {
    const held = await deps.store.due(system, now - 3_600_000, 1_000, 'held');
    report.heldOverAnHour = held.length;
    if (held.length > 0) deps.metrics.count(system, 'held_over_an_hour', held.length);
  }
  return report;
}

/** A record with a fresh fence, due now, and its message. Only for records nobody can be attempting. */
async function requeue(deps: EngineDeps, record: PaymentRecord, why: string, log: Logger): Promise<void> {
  const now = deps.clock();
  const next: PaymentRecord = { ...scheduled(record, now, now, deps.pacer.mintFence()), history: withHistory(record, now, 'requeued', why) };
  if (!(await deps.store.replace(next, record.version))) return;
  try {
    await deps.queue.send(retryMessage({ ...next, version: record.version + 1 }, 'sweep'), 0);
  } catch (err) {
    log.error('retry enqueue failed; the next sweep will try again', { error: err });
  }
}

/** An attempt that did not finish: ambiguous, handled by the system's policy (resend, reconcile, park). */
async function strand(deps: EngineDeps, module: SystemModule, record: PaymentRecord, why: string, log: Logger): Promise<void> {
  const now = deps.clock();
  log.warn('unfinished attempt: its outcome is ambiguous', { policy: module.ambiguity });
  const decision = written(decide(record, { type: 'stranded', why }, engineContext(deps, module, now)));
  await settle(deps, module, record, decision.record, log, decision.wakeAt !== undefined ? { wakeAt: decision.wakeAt, reason: 'stranded' } : {});
}

/**
 * While a system is failing (its limiter says so), one waiting payment per sweep is tried now: the
 * first success after an outage wakes the others (issue 10: all post within a minute of recovery,
 * however long their backoff had grown).
 */
async function probe(deps: EngineDeps, module: SystemModule, log: Logger): Promise<number> {
  const state = await deps.pacer.refresh(module.name);
  if (state.failingSince === undefined) return 0;
  const now = deps.clock();
  const waiting = await deps.store.due(module.name, Number.MAX_SAFE_INTEGER, 1, 'due', now);
  const first = waiting[0];
  if (!first) return 0;
  await deps.queue.send({ pk: first.pk, system: module.name, reason: 'probe', now: true }, 0);
  log.info('probing a failing system with one waiting payment', { ref: hashId(first.pk), failingForSeconds: Math.round((now - state.failingSince) / 1000) });
  return 1;
}

/** After an outage ended: every payment of the system waiting in backoff is tried now (paced as usual). */
export async function wakeWaiting(deps: EngineDeps, system: string, log: Logger, limit = 5_000): Promise<number> {
  const now = deps.clock();
  const waiting = await deps.store.due(system, Number.MAX_SAFE_INTEGER, limit, 'due', now + 1);
  for (const w of waiting) await deps.queue.send({ pk: w.pk, system, reason: 'recovered', now: true }, 0);
  if (waiting.length > 0) {
    deps.metrics.count(system, 'woken', waiting.length);
    log.info('system answered again: waiting payments woken', { count: waiting.length });
  }
  return waiting.length;
}

/**
 * One reconciliation of a record this caller holds (its fence consumed): found means posted and never
 * sent again; absent means sent once more (the read proves it did not arrive), and absent again after
 * that means unknown; a read that fails is asked again with backoff.
 */
export async function reconcileOnce(deps: EngineDeps, module: SystemModule, record: PaymentRecord, log: Logger, deadline: number): Promise<PaymentRecord> {
  const now = deps.clock();
  const holder = { record };
  let result: ReconcileResult;
  if (!module.reconcile) result = { type: 'unknowable', message: `${module.name} cannot be asked whether the payment arrived` };
  else {
    try {
      result = await module.reconcile(record, attemptContext(deps, holder, deadlineSignal(deadline, now, deps.stopping)));
    } catch (err) {
      if (err instanceof LeaseLostError) return (await deps.store.get(record.pk)) ?? record;
      result = { type: 'inconclusive', message: (err as Error).message };
    }
  }
  const held = holder.record;
  log.info('reconciled', { result: result.type });
  const d = written(decide(held, { type: 'reconciled', result }, engineContext(deps, module, deps.clock())));
  return settle(deps, module, held, d.record, log, d.wakeAt !== undefined ? { wakeAt: d.wakeAt, reason: result.type === 'absent' ? 'reconciled-absent' : 'reconcile' } : {});
}
