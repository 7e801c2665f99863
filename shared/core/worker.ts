import type { Logger } from '../log.js';
import { parseRetryMessage, retryMessage, type RetryMessage } from '../queue/port.js';
import { ConfigError, type SystemModule } from '../systems/types.js';
import { engineContext, sendOnce, settle } from './attempt.js';
import type { EngineDeps } from './context.js';
import { decide, written } from './decide.js';
import { budgetFor, scheduled, withHistory } from './lifecycle.js';
import { slotUsable } from './pacing.js';
import { reconcileOnce, wakeWaiting } from './recovery.js';
import { sqsDelaySeconds } from './retry-policy.js';
import { ACTIVE_STATUSES, systemOfPk, type Outcome, type PaymentRecord } from './types.js';

/**
 * A system's retry worker, one batch of queue messages at a time (SQS with ReportBatchItemFailures).
 *
 * Per batch: the records the messages do not carry are read in one request; the batch's send slots are
 * taken in one conditional write; the fences are consumed in one write per fence id (one per message
 * for systems that park ambiguous outcomes, so only the truly in-flight can become unknown); then each
 * message is sent at its slot. A message that is early, or for which no slot is free in this invocation,
 * goes back on the queue without touching its record. Only a thrown error (the store unreachable)
 * reports a message as failed, so SQS redelivers it and, after five receives, dead-letters it.
 */

export interface QueueItem {
  id: string;
  body: string;
}

export interface BatchResult {
  failed: string[];
  /** What happened to the messages, by kind (logs and tests). */
  counts: Record<string, number>;
}

interface Work {
  id: string;
  message: RetryMessage;
  record: PaymentRecord;
}

export async function handleBatch(deps: EngineDeps, system: string, items: readonly QueueItem[], invocationDeadline: number): Promise<BatchResult> {
  const log = deps.log.child({ system });
  const failed: string[] = [];
  const counts: Record<string, number> = {};
  const note = (kind: string, n = 1) => {
    counts[kind] = (counts[kind] ?? 0) + n;
  };
  const module = deps.systems(system);
  if (!module) {
    log.error('retry messages for a system this worker does not serve', { count: items.length });
    return { failed: items.map((i) => i.id), counts: { 'no-module': items.length } };
  }

  const messages: { id: string; message: RetryMessage }[] = [];
  for (const item of items) {
    try {
      // Authenticated before anything in it is read (issue 20 item 4): a record copy and a fence are trusted only from us.
      const message = parseRetryMessage(item.body, deps.messageKeys);
      if (message.system !== system) throw new Error(`a ${message.system} message on the ${system} queue`);
      // The record named decides what is sent and where: another system's record (a hand-made or
      // mis-routed message) must not be posted by this system's module.
      if (systemOfPk(message.pk) !== system) throw new Error(`a ${systemOfPk(message.pk)} record in a message on the ${system} queue`);
      messages.push({ id: item.id, message });
    } catch (err) {
      // Never succeeds: let it reach the dead-letter queue where an operator can read it.
      log.error('unreadable retry message', { messageId: item.id, error: err });
      failed.push(item.id);
    }
  }

  let read: Map<string, PaymentRecord>;
  try {
    const missing = messages.filter((m) => !m.message.record).map((m) => m.message.pk);
    read = missing.length > 0 ? await deps.store.getMany(missing) : new Map();
  } catch (err) {
    log.error('records could not be read; the batch will be redelivered', { error: err });
    return { failed: [...failed, ...messages.map((m) => m.id)], counts: { 'store-error': messages.length } };
  }

  const now = deps.clock();
  const work: Work[] = [];
  // The fences (id and counter) of the messages taken into work: a second copy of a message in the same
  // batch (a sweep duplicate next to the original, an SQS redelivery) is dropped here, because one
  // fence write cannot consume the same counter twice (DynamoDB refuses the overlapping paths, and the
  // whole batch would fail with it).
  const taken = new Set<string>();
  for (const { id, message } of messages) {
    const record = message.record ?? read.get(message.pk);
    let until: number | undefined;
    if (!record) note('missing');
    else if (!ACTIVE_STATUSES.includes(record.status)) note('settled');
    else if (!record.fence) note(record.leaseUntil !== undefined ? 'in-flight' : 'unfenced');
    else if (message.fence && (message.fence.id !== record.fence.id || message.fence.n !== record.fence.n)) note('stale');
    else if ((until = early(deps, module, record, message.now, now)) !== undefined) {
      // Woken early (a wait longer than SQS's 900 s, a duplicate, or a wake-up that may not read back
      // yet): sleep again on the queue.
      await requeueMessage(deps, record, 'deferred', until, log, failed, id);
      note('deferred');
    } else if (taken.has(`${record.fence.id}#${record.fence.n}`)) note('duplicate');
    else {
      taken.add(`${record.fence.id}#${record.fence.n}`);
      work.push({ id, message, record });
    }
  }
  if (work.length === 0) return { failed, counts };

  const latestStart = invocationDeadline - deps.settings.attemptTimeoutMs - deps.settings.settleMarginMs;
  let rate: number;
  let stop: Outcome | undefined;
  try {
    rate = module.maxPerSecond();
    stop = await module.prepare?.(AbortSignal.timeout(Math.max(1, Math.ceil(Math.min(deps.settings.attemptTimeoutMs, invocationDeadline - now)))));
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    log.error('system configuration invalid: its payments are held', { variables: err.missing, reason: err.message });
    await settleAll(deps, module, work, { type: 'auth', config: true, message: err.message }, log, note, failed);
    return { failed, counts };
  }
  if (stop) {
    // The credentials could not be had: nothing was sent. Refused credentials hold the payments; a
    // token endpoint that is down or limiting sends the messages back to wait, without a write.
    if (stop.type === 'auth') await settleAll(deps, module, work, stop, log, note, failed);
    else {
      const spent = work.filter((w) => deps.clock() - w.record.budgetFrom >= budgetFor(deps.settings, system));
      if (spent.length > 0) await settleAll(deps, module, spent, stop, log, note, failed);
      const waitMs = 'waitMs' in stop && stop.waitMs !== undefined ? stop.waitMs : 5_000;
      for (const w of work.filter((x) => !spent.includes(x))) await requeueMessage(deps, w.record, 'credentials-unavailable', deps.clock() + waitMs, log, failed, w.id);
      note('credentials-unavailable', work.length - spent.length);
    }
    return { failed, counts };
  }

  if (latestStart <= deps.clock()) {
    // Too little of this invocation is left to send anything: the messages go back untouched (no
    // fence taken, no write), to a worker with time.
    for (const w of work) await requeueMessage(deps, w.record, 'no-time-left', deps.clock() + 1_000, log, failed, w.id);
    note('no-time-left', work.length);
    return { failed, counts };
  }
  const precise = module.ambiguity === 'park';
  // Every attempt of this batch ends by this time (its fence records it): recovery reads it to decide
  // when an unfinished attempt may have stopped. A send may start as late as `latestStart`.
  const batchDeadline = invocationDeadline - deps.settings.settleMarginMs;
  // Send slots first: this container's own intake lane (no request), then shared slots in one
  // conditional write, as far ahead as this invocation may start a send.
  const times: number[] = [];
  if (latestStart > deps.clock()) {
    for (let i = 0; i < work.length; i++) {
      // The schedule is slowed for the lane's whole life, so its sends are worth taking until it ends.
      // A worker in the intake's own container (the local process) also renews that lane while it has a
      // backlog: the lane's share then never falls into a cooling gap halfway through. It never leases
      // one itself: the intake gives a lane back when it sees a backlog, so a lane leased for a batch
      // cost a lease and a release where a shared reservation costs one write.
      let at: number | undefined;
      try {
        at = await deps.pacer.lanePermit(system, rate, latestStart - deps.clock(), deps.pacer.lanesServeWorkers && deps.pacer.holdsLane(system));
      } catch (err) {
        // A lane renewal that cannot be written: the shared schedule (or the queue) takes the rest, as
        // when the lane is full. Thrown on, it failed the whole batch towards the dead-letter queue.
        log.warn('intake lane could not be renewed; the shared schedule is asked instead', { error: err });
      }
      if (at === undefined) break;
      times.push(at);
    }
    if (times.length < work.length) {
      try {
        times.push(...(await deps.pacer.reserve(system, rate, work.length - times.length, latestStart)));
      } catch (err) {
        log.error('rate limiter unavailable; the messages wait', { error: err });
      }
    }
  }
  times.sort((a, b) => a - b);
  // Messages beyond this invocation's slots go back to the queue as they are: no fence taken, no write.
  const waiting = work.slice(times.length);
  for (const w of waiting) await requeueMessage(deps, w.record, 'waiting-for-slot', deps.pacer.nextFree(system), log, failed, w.id);
  if (waiting.length > 0) note('waiting-for-slot', waiting.length);
  const slotted = work.slice(0, times.length).map((w, i) => ({ ...w, slot: times[i] as number }));
  // Systems that do not park consume the slotted messages' fences now, in one write per fence id (a
  // duplicate message then leaves its slot unused). Parking systems consume each fence just before its
  // send, so that only a truly in-flight request can ever become unknown (issue 10).
  let owned = new Set<Work>(slotted);
  if (!precise) owned = await consume(deps, slotted.map((w) => ({ work: w, deadline: batchDeadline })), log, note, failed);
  const scheduledWork = slotted.filter((w) => owned.has(w));

  const deadlineOf = (slot: number) => Math.min(slot + deps.settings.attemptTimeoutMs, batchDeadline);
  let recovered = false;
  await Promise.all(
    scheduledWork.map(async (w) => {
      const wlog = log.child({ correlationId: w.record.correlationId });
      try {
        let slot = w.slot;
        // Parking systems: the deadline recorded with this message's fence, once consumed.
        let fenced: number | undefined;
        for (let tries = 0; ; tries++) {
          // A parking system consumes the fence just before the send, started early by what a consume
          // takes here: the request still leaves on its slot, and a fence is spent at most that long
          // before anything is sent.
          const start = precise ? slot - deps.pacer.consumeEstimateMs() : slot;
          if (start > deps.clock()) await deps.sleep(start - deps.clock());
          // The process stopped while this send waited for its slot: it never happens.
          if (deps.stopping?.aborted) return;
          // A slot in a pause a 429 stated, or placed at a rate a 429 has since lowered, is not sent on: it
          // would meet the limit as one more 429 (issue 23). Like a late one, it takes a new slot.
          const paused = deps.pacer.pausedAt(system, slot);
          if (precise && !paused && slotUsable(slot, deps.clock(), deps.pacer.settings)) {
            const deadline = deadlineOf(slot);
            const began = deps.clock();
            const mine = await consume(deps, [{ work: w, deadline }], wlog, note, failed);
            deps.pacer.noteConsume(deps.clock() - began);
            if (!mine.has(w)) return;
            fenced = deadline;
            if (slot > deps.clock()) await deps.sleep(slot - deps.clock());
          }
          const usable = slotUsable(slot, deps.clock(), deps.pacer.settings) && (fenced !== undefined || !deps.pacer.pausedAt(system, slot));
          if (fenced !== undefined && (deps.stopping?.aborted || !usable)) {
            // Its fence is spent and nothing was sent: recorded as due again at once (a write, under a
            // fresh fence), rather than held through another wait where a crash would leave it unknown.
            await giveBack(deps, module, w, false, log, failed);
            note('no-slot');
            return;
          }
          if (usable) break;
          // This send would leave too late for its slot (a busy event loop): it takes a new one, early
          // enough to finish within the deadline its fence records.
          const latest = Math.min(latestStart, batchDeadline - deps.settings.attemptTimeoutMs / 2);
          let again: number[] = [];
          try {
            // Slots a 429 made stale are taken again together, one write for all of this container's (rebook).
            if (tries < 3 && latest > deps.clock()) {
              const stale = deps.pacer.pausedAt(system, slot);
              again = stale ? [await deps.pacer.rebook(system, rate, slot, latest)].filter((x): x is number => x !== undefined) : await deps.pacer.reserve(system, rate, 1, latest, [slot]);
            }
          } catch (err) {
            wlog.warn('rate limiter unavailable; the message waits', { error: err });
          }
          if (again[0] === undefined) {
            // A parking system's fence is not spent yet: the message waits on the queue as it is.
            await giveBack(deps, module, w, precise, log, failed);
            note('no-slot');
            return;
          }
          slot = again[0];
        }
        // The attempt's own deadline: never later than the one its fence records.
        const deadline = fenced ?? deadlineOf(slot);
        if (w.record.status === 'reconciling') {
          const after = await reconcileOnce(deps, module, w.record, wlog, deadline);
          note(`reconciled:${after.status}`);
        } else {
          // Held to its slot where the request meets its socket too (a busy event loop can hold it up after the check).
          const sent = await sendOnce(deps, module, w.record, wlog, deadline, slot);
          if (sent.recovered) recovered = true;
          note(`sent:${sent.record.status}`);
        }
      } catch (err) {
        wlog.error('retry message failed', { messageId: w.id, error: err });
        failed.push(w.id);
      }
    }),
  );
  if (recovered) await wakeWaiting(deps, system, log);
  return { failed, counts };
}

/** When a woken record is not due yet (the transition function decides): the time to sleep until, else undefined. */
function early(deps: EngineDeps, module: SystemModule, record: PaymentRecord, asap: boolean | undefined, now: number): number | undefined {
  const d = decide(record, { type: 'woken', ...(asap ? { now: true } : {}) }, engineContext(deps, module, now));
  return d.kind === 'defer' ? d.until : undefined;
}

/**
 * Consumes the fences of `items` (one write per fence id); returns the work this worker now holds. A
 * fence write that fails reports only its own messages as failed (SQS redelivers them): the other fence
 * ids of the batch are consumed already, and their messages must still be sent here.
 */
async function consume(deps: EngineDeps, items: { work: Work; deadline: number }[], log: Logger, note: (k: string, n?: number) => void, failed: string[]): Promise<Set<Work>> {
  const owned = new Set<Work>();
  const groups = new Map<string, { work: Work; deadline: number }[]>();
  for (const item of items) {
    const id = (item.work.record.fence as { id: string }).id;
    groups.set(id, [...(groups.get(id) ?? []), item]);
  }
  for (const [id, group] of groups) {
    let won: Set<number>;
    try {
      won = await deps.fences.consume(
        id,
        group.map((g) => ({ n: (g.work.record.fence as { n: number }).n, deadline: g.deadline })),
      );
    } catch (err) {
      log.error('fences could not be consumed; the messages will be redelivered', { count: group.length, error: err });
      failed.push(...group.map((g) => g.work.id));
      continue;
    }
    for (const g of group) {
      if (won.has((g.work.record.fence as { n: number }).n)) owned.add(g.work);
      else {
        // Another copy of this message (a sweep duplicate, an SQS redelivery) consumed it first.
        note('duplicate');
        log.debug('fence already consumed: message dropped', { messageId: g.work.id });
      }
    }
  }
  return owned;
}

/** Settles every item with `outcome` (nothing was sent); consumes their fences first. */
async function settleAll(deps: EngineDeps, module: SystemModule, work: Work[], outcome: Outcome, log: Logger, note: (k: string, n?: number) => void, failed: string[]): Promise<void> {
  const now = deps.clock();
  const owned = await consume(deps, work.map((w) => ({ work: w, deadline: now })), log, note, failed);
  for (const w of owned) {
    try {
      // Nothing was sent: not an attempt, and what the downstream may hold is unchanged (decide keeps it).
      const decision = written(decide(w.record, { type: 'not-sent', outcome }, engineContext(deps, module, now)));
      await settle(deps, module, w.record, decision.record, log, decision.wakeAt !== undefined ? { wakeAt: decision.wakeAt } : {});
      note(`settled:${decision.record.status}`);
    } catch (err) {
      log.error('retry message failed', { messageId: w.id, error: err });
      failed.push(w.id);
    }
  }
}

/**
 * A held attempt that could not get a slot in time: recorded as due again under a fresh fence (it held
 * the old one, so the write is its to make). Nothing was sent.
 */
async function giveBack(deps: EngineDeps, module: SystemModule, w: Work, fenceUnspent: boolean, log: Logger, failed: string[]): Promise<void> {
  if (fenceUnspent) {
    // Not consumed yet: the same message simply waits on the queue again.
    await requeueMessage(deps, w.record, 'waiting-for-slot', deps.pacer.nextFree(module.name), log, failed, w.id);
    return;
  }
  const now = deps.clock();
  // Never sooner than a second: a worker that cannot get slots must not spin on its own messages.
  const at = Math.max(deps.pacer.nextFree(module.name), now + 1_000);
  const next: PaymentRecord = { ...scheduled(w.record, now, at, deps.pacer.mintFence()), history: withHistory(w.record, now, 'deferred', 'no send slot in time; nothing was sent') };
  await settle(deps, module, w.record, next, log, { wakeAt: at, reason: 'deferred' });
}

/** Puts the same message (same fence, same snapshot) back on the queue to arrive at `at`. */
async function requeueMessage(deps: EngineDeps, record: PaymentRecord, reason: string, at: number, log: Logger, failed: string[], id: string): Promise<void> {
  try {
    await deps.queue.send(retryMessage(record, reason), sqsDelaySeconds(at, deps.clock()));
  } catch (err) {
    log.error('could not put the message back; it will be redelivered', { messageId: id, error: err });
    failed.push(id);
  }
}

