import { withSendSlot } from './send-slot.js';
import { parkedLogFields } from './parked.js';
import type { Logger } from '../log.js';
import { retryMessage } from '../queue/port.js';
import { ConfigError, configuredRate, LeaseLostError, type AttemptContext, type SystemModule } from '../systems/types.js';
import type { EngineDeps } from './context.js';
import { ambiguityOf } from '../systems/holdings.js';
import { decide, decideContext, written, type DecideContext } from './decide.js';
import { capText, ownWrite, type OutcomeContext } from './lifecycle.js';
import { sqsDelaySeconds } from './retry-policy.js';
import type { Outcome, PaymentRecord } from './types.js';

/**
 * The attempt room: one send (or one reconciling read) under a deadline, and the outcome recorded with
 * a write conditional on the version the attempt started from.
 */

export function outcomeContext(deps: EngineDeps, module: SystemModule | undefined, now: number): OutcomeContext {
  return { now, policy: module?.ambiguity ?? 'reconcile', settings: deps.settings, random: deps.random, fence: () => deps.pacer.mintFence() };
}

/** The transition function's context for `module`'s records at `now` (shared/core/decide.ts). */
export function engineContext(deps: EngineDeps, module: SystemModule, now: number): DecideContext {
  return decideContext(module.name, outcomeContext(deps, module, now));
}

/** An AbortSignal that fires at `deadline` (epoch ms), or when the process stops. */
export function deadlineSignal(deadline: number, now: number, stopping?: AbortSignal): AbortSignal {
  const timeout = AbortSignal.timeout(Math.max(1, Math.ceil(deadline - now)));
  return stopping ? AbortSignal.any([timeout, stopping]) : timeout;
}

/** A context whose `checkpoint` writes progress conditionally on the attempt's version and keeps `holder` current. */
export function attemptContext(deps: EngineDeps, holder: { record: PaymentRecord }, signal: AbortSignal): AttemptContext {
  return {
    correlationId: holder.record.correlationId,
    record: holder.record,
    signal,
    async checkpoint(patch) {
      const current = holder.record;
      const next: PaymentRecord = { ...current, checkpoints: { ...current.checkpoints, ...patch }, updatedAt: new Date(deps.clock()).toISOString() };
      let written = false;
      for (let i = 0; ; i++) {
        try {
          written = await deps.store.replace(next, current.version);
          break;
        } catch (err) {
          // The write may have been made: if the item there is this one, it is ours (issue 19, defect 6).
          const there = await deps.store.get(current.pk).catch(() => undefined);
          if (there && ownWrite(there, { ...next, version: current.version + 1 })) {
            written = true;
            break;
          }
          // Not made (the store failed before it, or could not be read): tried again while the attempt has
          // time, as a settle is. A marker that could not be cleared ("not sent after all") would otherwise
          // make the attempt ambiguous and park a payment that never left (the simulation, seed 374).
          if (i >= 2 || signal.aborted || (there !== undefined && there.version !== current.version)) throw err;
          await deps.sleep(100 * 2 ** i);
        }
      }
      // A write whose reply was lost and retried (by the SDK) fails its condition against itself: that
      // is this attempt's own progress, not another worker's, and must not become an ambiguous outcome.
      if (!written) {
        const there = await deps.store.get(current.pk);
        if (!there || !ownWrite(there, { ...next, version: current.version + 1 })) throw new LeaseLostError();
      }
      holder.record = { ...next, version: current.version + 1 };
    },
  };
}

/** The module's post; a throw becomes an outcome, never "not sent" unless it provably was not. */
export async function safePost(module: SystemModule, record: PaymentRecord, ctx: AttemptContext, log: Logger): Promise<Outcome> {
  try {
    return await module.post(record.request, ctx);
  } catch (err) {
    if (err instanceof ConfigError) return { type: 'auth', config: true, message: err.message };
    if (err instanceof LeaseLostError) return { type: 'ambiguous', message: err.message };
    // A module bug after the request may have left: treat as ambiguous, never as "not sent".
    log.error('system module threw', { error: err });
    return { type: 'ambiguous', message: capText(`internal error while posting: ${(err as Error).message}`) };
  }
}

/** One metric per recorded outcome (issue 6): what an operator's dashboard and alarms count. */
export function countOutcome(deps: EngineDeps, record: PaymentRecord): void {
  if (record.status === 'retrying' || record.status === 'reconciling') {
    deps.metrics.count(record.system, record.error?.kind === 'rate_limited' ? 'rate_limited' : 'retried');
    return;
  }
  deps.metrics.count(record.system, record.status);
  if (record.status === 'held' && record.error?.kind === 'budget') deps.metrics.count(record.system, 'budget_exhausted');
  if (record.status === 'held' && record.error?.kind === 'config') deps.metrics.count(record.system, 'config_error');
}

/** Puts the record's wake-up message on its system's queue. A failure is logged: the sweep finds the record. */
export async function enqueue(deps: EngineDeps, record: PaymentRecord, at: number, reason: string, log: Logger): Promise<void> {
  try {
    await deps.queue.send(retryMessage(record, reason), sqsDelaySeconds(at, deps.clock()));
  } catch (err) {
    log.error('retry enqueue failed; the sweep will pick the record up', { error: err });
  }
}

/** The record with the request its module keeps after the send; marked when that dropped anything. */
function trimmed(record: PaymentRecord, request: Record<string, unknown>): PaymentRecord {
  return request === record.request ? record : { ...record, request, requestTrimmed: true };
}

/**
 * Writes the next state conditionally on `from`'s version, then queues its wake-up. A settle that fails
 * for any reason but a lost condition is retried as a settle (issue 10): never turned into a re-send.
 * If the record moved on meanwhile (its attempt outlived its deadline and recovery took over), a
 * downstream success is still recorded: knowing it posted beats any ambiguity recovery worked from.
 */
export async function settle(
  deps: EngineDeps,
  module: SystemModule | undefined,
  from: PaymentRecord,
  next: PaymentRecord,
  log: Logger,
  opts: { wakeAt?: number; reason?: string } = {},
): Promise<PaymentRecord> {
  // Personal data that was needed only for the send goes once nothing will send it again.
  const final = (next.status === 'posted' || next.status === 'failed') && module?.afterSend ? trimmed(next, module.afterSend(next.request)) : next;
  let written = false;
  for (let i = 0; ; i++) {
    try {
      written = await deps.store.replace(final, from.version);
      break;
    } catch (err) {
      if (i >= 3) {
        log.error('outcome could not be recorded after 4 tries; the sweep will treat the attempt as unfinished', { outcome: next.status, error: err });
        throw err;
      }
      await deps.sleep(200 * 2 ** i);
    }
  }
  if (!written && (final.fence || final.leaseOwner !== undefined)) {
    // A write whose reply was lost and retried by the SDK fails its condition against itself: if the
    // record is this very write, its wake-up must still be queued (else it waits for the sweep).
    const current = await deps.store.get(from.pk);
    written = current !== undefined && ownWrite(current, { ...final, version: from.version + 1 });
  }
  if (written) {
    const record = { ...final, version: from.version + 1 };
    countOutcome(deps, record);
    if (opts.wakeAt !== undefined) await enqueue(deps, record, opts.wakeAt, opts.reason ?? record.status, log);
    return record;
  }
  log.warn('the record moved on before this outcome was recorded', { outcome: next.status });
  for (let i = 0; i < 3; i++) {
    const current = await deps.store.get(from.pk);
    if (!current) break;
    if (next.status !== 'posted') return current;
    // The success is recorded for the revision it belongs to, never over a newer one (issue 19).
    const d = decide(current, { type: 'late-posted', revision: from.revision ?? 1, attempts: next.attempts, ...(next.result ? { result: next.result } : {}) }, decideContext(current.system, { ...outcomeContext(deps, module, deps.clock()), policy: module?.ambiguity ?? ambiguityOf(current.system) }));
    if (d.kind !== 'write') return current;
    // The record moved on under a fence whose message may still be queued, carrying a snapshot that says
    // the payment is due: spent here first, so that message sends nothing over a record this write parks
    // or settles (the review of issue 19: revision 2 was sent after revision 1's late success parked it).
    // One consumed already belongs to an attempt under way, which this write cannot stop anyway.
    if (current.fence) await deps.fences.consume(current.fence.id, [{ n: current.fence.n, deadline: deps.clock() }]);
    const fixed = d.record;
    if (await deps.store.replace(fixed, current.version)) {
      const record = { ...fixed, version: current.version + 1 };
      if (d.said === 'posted twice') {
        log.error('two revisions of one payment reached the downstream: an operator must reverse one', { revision: from.revision ?? 1, current: current.revision ?? 1 });
        deps.metrics.count(record.system, 'posted_twice');
      } else countOutcome(deps, record);
      return record;
    }
  }
  return (await deps.store.get(from.pk)) ?? next;
}

export interface SendResult {
  record: PaymentRecord;
  outcome: Outcome;
  /** This success ended an outage of the system: the waiting payments should be woken. */
  recovered: boolean;
}

/**
 * One send of `record` (which this caller holds: a lease written as "sending", or a consumed fence)
 * under `deadline`, its outcome applied and recorded, and what it taught the shared limiter.
 */
/** How a send stopped on its socket past its slot is noted in the history (and counted: MAX_LATE_STOPS). */
const LATE_NOTE = 'past its send slot on the socket';
const MAX_LATE_STOPS = 3;

export async function sendOnce(deps: EngineDeps, module: SystemModule, record: PaymentRecord, log: Logger, deadline: number, slot?: number): Promise<SendResult> {
  const started = deps.clock();
  const holder = { record };
  // The send slot, held where the request meets its socket: no later than the lateness the pacing allows a
  // send (pacing.ts, lateMs; the rest of marginMs is the network's jitter), and not once a 429 heard
  // meanwhile put it in a pause (the rest of a burst whose permits were handed out before the 429 would each
  // meet the limit). Not after a payment was stopped so MAX_LATE_STOPS times: a machine that busy would
  // otherwise keep it going round the queue; it then risks one 429 instead.
  const stops = record.history.filter((h) => h.event === 'not_sent' && h.detail?.startsWith(LATE_NOTE)).length;
  // A lane permit that could leave late without crowding its lane's window moves to when it leaves
  // (Pacer.moveLaneSend): `current` is where it counts.
  let current = slot;
  const guard =
    slot !== undefined && module.sendsOnItsSlot && stops < MAX_LATE_STOPS
      ? {
          leaveBy: slot + deps.pacer.settings.lateMs,
          withdrawn: () => (deps.pacer.pausedAt(module.name, current ?? slot) ? 'a 429 heard since its send slot was given paused the sends of that slot' : undefined),
          mayLeaveLate: (now: number) => {
            if (!deps.pacer.moveLaneSend(module.name, current ?? slot, now)) return false;
            current = Math.ceil(now);
            return true;
          },
        }
      : undefined;
  const outcome = await withSendSlot(guard, () => safePost(module, record, attemptContext(deps, holder, deadlineSignal(deadline, started, deps.stopping)), log));
  const now = deps.clock();
  if (outcome.type === 'retryable' && outcome.late) {
    // Nothing was written: not an attempt the downstream saw, nor a failure of it (no backoff, no outage,
    // nothing for the limiter to learn). Due again at once, for a new slot from the queue's worker.
    const decision = written(decide(holder.record, { type: 'not-sent', outcome: { ...outcome, waitMs: 0, message: `${LATE_NOTE}: ${outcome.message}` } }, engineContext(deps, module, now)));
    log.info('not sent: its send slot passed, or a 429 withdrew it, before the request reached its socket; queued for a new slot', { status: decision.record.status });
    // The slot goes back to the schedule too: counted as a send, it would keep the window full for nothing.
    const [settled] = await Promise.all([
      settle(deps, module, holder.record, decision.record, log, decision.wakeAt !== undefined ? { wakeAt: decision.wakeAt } : {}),
      current === undefined ? undefined : safeRate(module, (rate) => deps.pacer.giveBack(module.name, rate, current as number)),
    ]);
    return { record: settled, outcome, recovered: false };
  }
  deps.metrics.milliseconds(module.name, 'post_latency', now - started);
  // Checkpoints written during the post moved the version on: settle from the latest one.
  const decision = written(decide(holder.record, { type: 'sent', outcome }, engineContext(deps, module, now)));
  // A payment that now waits for an operator is a warning, with the downstream's reason and what to check.
  const parked = decision.record.status === 'held' || decision.record.status === 'unknown';
  (parked ? log.warn : log.info)('attempt', {
    outcome: outcome.type,
    httpStatus: 'httpStatus' in outcome ? outcome.httpStatus : undefined,
    status: decision.record.status,
    attempts: decision.record.attempts,
    ...(parked ? parkedLogFields(module.name, decision.record, outcome) : {}),
  });
  const [settled, feedback] = await Promise.all([
    settle(deps, module, holder.record, decision.record, log, decision.wakeAt !== undefined ? { wakeAt: decision.wakeAt } : {}),
    safeRate(module, (rate) => deps.pacer.feedback(module.name, rate, outcome, started)),
  ]);
  return { record: settled, outcome, recovered: feedback === 'recovered' };
}

/** Runs `f` with the system's configured rate, or does nothing when the configuration cannot give one. */
export async function safeRate<T>(module: SystemModule, f: (rate: number) => Promise<T>): Promise<T | undefined> {
  const rate = configuredRate(module);
  return rate === undefined ? undefined : f(rate);
}
