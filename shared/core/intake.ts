import { hashId, type Logger } from '../log.js';
import { ConfigError, type ParsedPayment, type SystemModule } from '../systems/types.js';
import { countOutcome, engineContext, enqueue, sendOnce, settle } from './attempt.js';
import { payloadHash, samePayload } from './canonical.js';
import type { EngineDeps } from './context.js';
import { capText, leasedForSending, ownWrite, scheduled, settledBase, withHistory } from './lifecycle.js';
import { slotUsable } from './pacing.js';
import { retryDelayMs } from './retry-policy.js';
import { wakeWaiting } from './recovery.js';
import type { ClaimResult } from '../store/port.js';
import { recordPk, type Outcome, type PaymentRecord, type RevisionSummary } from './types.js';
import { decide, unconfirmedOf } from './decide.js';

/**
 * The intake room: a validated payment is claimed with one conditional write, then either sent in
 * this invocation (when this container's lane has a send free now and the invocation has time) or
 * handed to its system's queue.
 */

export interface IntakeIds {
  owner: string;
  correlationId: string;
  /** Epoch ms by which this invocation must have answered (Lambda's remaining time, less a margin). */
  deadline?: number;
  /** The authenticated caller (its name): stored with the record. */
  caller?: string;
}

export type SubmitResult =
  /** First delivery of the key: the record after the in-process attempt, or as queued. */
  | { kind: 'created'; record: PaymentRecord }
  /** The key was seen before with the same payload: nothing was sent. */
  | { kind: 'duplicate'; record: PaymentRecord }
  /** The key was seen before with another payload and that payment is not finished with: refused. */
  | { kind: 'conflict'; record: PaymentRecord }
  /** The key belongs to another caller: refused without saying more. */
  | { kind: 'foreign'; record: PaymentRecord }
  /** The key's payment reached nothing (failed or held): this corrected payload is a new revision of it. */
  | { kind: 'revised'; record: PaymentRecord }
  /** The body is an earlier revision of the key's payment, superseded since: that revision's outcome, nothing sent. */
  | { kind: 'earlier-revision'; record: PaymentRecord; revision: RevisionSummary }
  /** A correction refused because the downstream holds, or may hold, the payment already (`reason` says what, and what to do). */
  | { kind: 'downstream-holds'; record: PaymentRecord; reason: string };

type Plan =
  | { kind: 'inline'; attemptDeadline: number; leaseUntil: number; at: number; rate: number }
  | { kind: 'queued'; at: number; note?: string }
  | { kind: 'held'; outcome: Extract<Outcome, { type: 'auth' }> };

/**
 * Decides how the first attempt is made, before anything is recorded: a "sending" record is written only
 * when the send can leave at once (its lane permit is due and the credentials are ready), so an attempt
 * that dies before sending is never mistaken for one that may have sent.
 */
async function plan(deps: EngineDeps, module: SystemModule, deadline: number | undefined, log: Logger): Promise<Plan> {
  const now = deps.clock();
  let rate: number;
  try {
    rate = module.maxPerSecond();
  } catch (err) {
    if (err instanceof ConfigError) return heldForConfig(deps, module, err, log);
    throw err;
  }
  const { settings } = deps;
  // Too little time left to send, hear back and record it: the queue's worker sends it.
  if (deadline === undefined || deadline - now < settings.settleMarginMs + 3_000) return { kind: 'queued', at: now };
  // Behind a backlog a new payment queues too: it must not overtake the ones waiting, and the worker
  // takes its send slots in one write per batch where a permit here would cost a wait (and a write).
  // The lane goes back then: whichever worker takes the backlog paces it on the shared schedule, which the
  // lane would hold at part of the rate until it ended.
  const backlog = (await deps.queue.depth?.(module.name)) ?? 0;
  if (backlog > 0) {
    await deps.pacer.releaseLane(module.name);
    return { kind: 'queued', at: now };
  }
  let at = await deps.pacer.lanePermit(module.name, rate, settings.inlineWaitMs);
  if (at === undefined) {
    // No lane (the shared schedule was busy lately, or the lane is full): one shared slot if the
    // schedule has one within the wait, judged first from the view already at hand (no request).
    await deps.pacer.releaseLane(module.name);
    if (deps.pacer.nextFree(module.name) <= now + settings.inlineWaitMs) {
      at = (await deps.pacer.reserve(module.name, rate, 1, now + settings.inlineWaitMs))[0];
    }
    if (at === undefined) return { kind: 'queued', at: now };
  }
  // The claim is written before the send and marks the record "sending". It starts just early enough, by
  // what claims take here, for the request to leave on its permit: a crash between claim and send leaves
  // an attempt that may have been made, which a parking system parks as unknown and a reconciling one
  // reads back, so that window stays about one write long. A system whose payment may simply be sent
  // again (resend) claims at once and waits for its permit after: a claim slowed by a burst of others
  // no longer makes its send miss the slot (proceed() checks).
  if (module.ambiguity !== 'resend') {
    const early = at - deps.pacer.claimEstimateMs();
    if (early > deps.clock()) await deps.sleep(early - deps.clock());
  }
  if (deps.stopping?.aborted) return { kind: 'queued', at: deps.clock() };
  // The attempt's time runs from its permit: a claim made ahead of it does not eat into the attempt.
  const attemptDeadline = Math.min(deadline - settings.settleMarginMs, Math.max(deps.clock(), at) + settings.attemptTimeoutMs);
  if (module.prepare) {
    let stop: Outcome | undefined;
    try {
      stop = await module.prepare(AbortSignal.timeout(Math.max(1, Math.ceil(attemptDeadline - deps.clock()))));
    } catch (err) {
      if (err instanceof ConfigError) return heldForConfig(deps, module, err, log);
      throw err;
    }
    if (stop?.type === 'auth') return { kind: 'held', outcome: stop };
    if (stop) {
      const wait = retryDelayMs({ failures: 1, statedWaitMs: 'waitMs' in stop ? stop.waitMs : undefined }, deps.random, settings.backoff);
      return { kind: 'queued', at: deps.clock() + wait, note: `not sent yet: ${capText('message' in stop ? stop.message : stop.type, 300)}` };
    }
  }
  return { kind: 'inline', attemptDeadline, leaseUntil: attemptDeadline + settings.settleMarginMs, at, rate };
}

function heldForConfig(deps: EngineDeps, module: SystemModule, err: ConfigError, log: Logger): Plan {
  log.error('system configuration invalid: its payments are held', { variables: err.missing, reason: err.message });
  return { kind: 'held', outcome: { type: 'auth', config: true, message: err.message } };
}

/** The record as the plan says to write it. */
function shaped(record: PaymentRecord, p: Plan, deps: EngineDeps, owner: string): PaymentRecord {
  const now = deps.clock();
  if (p.kind === 'inline') return leasedForSending({ ...record, status: 'retrying' }, owner, now, p.leaseUntil);
  if (p.kind === 'held') {
    return {
      ...settledBase(record, now),
      status: 'held',
      nextAttemptAt: now,
      error: { kind: p.outcome.config ? 'config' : 'auth', message: capText(p.outcome.message) },
      history: withHistory(record, now, 'held', `${p.outcome.config ? 'configuration' : 'credentials or scope'}: ${p.outcome.message}; nothing was sent`),
    };
  }
  const queued = scheduled({ ...record, status: 'retrying' }, now, p.at, deps.pacer.mintFence());
  return p.note ? { ...queued, history: withHistory(record, now, 'queued', p.note) } : queued;
}

/**
 * A permit within the intake's wait after the first was missed: the lane's, else one shared slot. A first
 * permit a 429 withdrew (`stale`) is taken again with this container's other withdrawn slots in one write
 * (`Pacer.rebook`), which gives them back: left in the schedule, slots never sent on kept the window full
 * at the lowered rate, and sends resumed half a second after the pause had ended.
 */
async function secondPermit(deps: EngineDeps, module: SystemModule, rate: number, now: number, log: Logger, stale?: number): Promise<number | undefined> {
  try {
    if (stale !== undefined) return await deps.pacer.rebook(module.name, rate, stale, now + deps.settings.inlineWaitMs);
    return (await deps.pacer.lanePermit(module.name, rate, deps.settings.inlineWaitMs)) ?? (await deps.pacer.reserve(module.name, rate, 1, now + deps.settings.inlineWaitMs))[0];
  } catch (err) {
    // The limiter cannot be reached: queue it like a missing permit. Thrown on, the record would keep
    // "sending" with nobody sending, and the sweep would strand a payment that never left.
    log.warn('rate limiter unavailable after the claim; the payment is queued', { error: err });
    return undefined;
  }
}

/** After the write: the in-process attempt, or the queue message. Returns the record as it now is. */
async function proceed(deps: EngineDeps, module: SystemModule, written: PaymentRecord, p: Plan, log: Logger): Promise<PaymentRecord> {
  if (p.kind === 'inline') {
    if (p.at > deps.clock()) await deps.sleep(p.at - deps.clock());
    let slot = p.at;
    // The claim ended after the permit came due: if later than a send may be, the permit is spent
    // (sending now could put one call too many in the downstream's window), unless it is a lane permit
    // the lane has room to send now (Pacer.moveLaneSend: far below the rate, a late send crowds nothing).
    // So is one a 429 heard since it was handed out put in its pause: the permits of a burst given before
    // the downstream's first 429 would each meet the limit once more (issue 23). Another one, or the queue.
    const paused = deps.pacer.pausedAt(module.name, slot);
    if (!paused && !slotUsable(slot, deps.clock(), deps.pacer.settings)) {
      const now = deps.clock();
      if (deps.pacer.moveLaneSend(module.name, slot, now)) slot = Math.ceil(now);
    }
    const spent = (at: number) => !slotUsable(at, deps.clock(), deps.pacer.settings) || deps.pacer.pausedAt(module.name, at);
    if (paused || !slotUsable(slot, deps.clock(), deps.pacer.settings)) {
      const now = deps.clock();
      // The record says "sending" from its claim. A parking system does not wait for another send with
      // it: a crash during that wait would park as unknown a payment that never left. The others may,
      // since a resend or a read settles what a crash leaves of theirs.
      const again = module.ambiguity === 'park' ? undefined : await secondPermit(deps, module, p.rate, now, log, paused ? p.at : undefined);
      const inTime = again !== undefined && again + deps.settings.attemptTimeoutMs / 2 <= p.attemptDeadline;
      if (inTime && again > deps.clock()) await deps.sleep(again - deps.clock());
      // The second permit is held to the same rule: a wait that woke late does not send late.
      if (!inTime || spent(again)) {
        // Nothing was sent: the record goes to the queue under a fresh fence (one more write, rarely).
        const at = deps.clock();
        const queued: PaymentRecord = { ...scheduled(written, at, at, deps.pacer.mintFence()), history: withHistory(written, at, 'queued', 'no send slot in time after the claim; nothing was sent') };
        return settle(deps, module, written, queued, log, { wakeAt: at, reason: 'queued' });
      }
      slot = again;
    }
    // The same rule once more where the request meets its socket (a busy event loop can hold it up after this).
    const sent = await sendOnce(deps, module, written, log, p.attemptDeadline, slot);
    if (sent.recovered) await wakeWaiting(deps, module.name, log);
    return sent.record;
  }
  if (p.kind === 'queued') await enqueue(deps, written, p.at, 'queued', log);
  else countOutcome(deps, written);
  return written;
}

function draft(module: SystemModule, parsed: ParsedPayment, ids: IntakeIds, now: number, ttlDays: number, checkpoints: Record<string, unknown> = {}): PaymentRecord {
  const stamp = new Date(now).toISOString();
  return {
    pk: recordPk(module.name, parsed.tenant, parsed.key),
    system: module.name,
    tenant: parsed.tenant,
    key: parsed.key,
    status: 'retrying',
    version: 1,
    revision: 1,
    payloadHash: payloadHash(parsed.request),
    request: parsed.request,
    ...(ids.caller ? { caller: ids.caller } : {}),
    attempts: 0,
    failures: 0,
    budgetFrom: now,
    checkpoints,
    history: [{ at: stamp, event: 'received' }],
    correlationId: ids.correlationId,
    createdAt: stamp,
    createdMs: now,
    updatedAt: stamp,
    ttl: Math.floor(now / 1000) + ttlDays * 86_400,
  };
}

/**
 * The claim, told apart from its own echo: a claim whose reply was lost is retried (by the SDK, or here
 * after an error) and then fails its condition against the item it wrote itself. Taken for a duplicate,
 * that item would keep "sending" with nobody sending, and the sweep would strand a payment that never
 * left (parked unknown where the system parks).
 */
async function claimOwn(deps: EngineDeps, first: PaymentRecord): Promise<ClaimResult> {
  let claim: ClaimResult;
  try {
    claim = await deps.store.claim(first);
  } catch (err) {
    // The write may have been made: if the item there is this one, it is ours to proceed with.
    const existing = await deps.store.get(first.pk).catch(() => undefined);
    if (existing && ownWrite(existing, first)) return { claimed: true };
    throw err;
  }
  if (!claim.claimed && ownWrite(claim.existing, first)) return { claimed: true };
  return claim;
}

/**
 * A queued claim's write on its turn (EngineDeps.queuedClaims). A write not answered within
 * QUEUED_TURN_MS gives its turn on and goes on waiting for its own answer: a request that hangs (the SDK
 * has no request timeout) holds up its own caller, not every payment this process queues after it.
 */
export const QUEUED_TURN_MS = 1_000;
async function queuedTurn<T>(deps: EngineDeps, gate: NonNullable<EngineDeps['queuedClaims']>['turn'], write: () => Promise<T>): Promise<T> {
  let written: Promise<T> | undefined;
  await gate(async () => {
    written = write();
    // deps.sleep, not a timer of its own: the simulation's clock runs it (test/sim/sim.ts).
    await Promise.race([written.then(() => undefined, () => undefined), deps.sleep(QUEUED_TURN_MS)]);
  });
  return written as Promise<T>;
}

/** The revision's conditional write, told apart from its own echo as the claim is (`claimOwn`). */
async function replaceOwn(deps: EngineDeps, written: PaymentRecord, expectedVersion: number): Promise<boolean> {
  try {
    if (await deps.store.replace(written, expectedVersion)) return true;
  } catch (err) {
    const current = await deps.store.get(written.pk).catch(() => undefined);
    if (current && ownWrite(current, written)) return true;
    throw err;
  }
  const current = await deps.store.get(written.pk);
  return current !== undefined && ownWrite(current, written);
}


/**
 * Claims the key with one conditional write, then makes the first attempt or queues it. `checkpoints`
 * start the record's progress (an upsert's first confirmation goes in with the claim, because nothing
 * may write the record under a pending attempt).
 */
export async function submit(deps: EngineDeps, module: SystemModule, parsed: ParsedPayment, ids: IntakeIds, checkpoints?: Record<string, unknown>): Promise<SubmitResult> {
  const log = deps.log.child({ system: module.name, ref: hashId(recordPk(module.name, parsed.tenant, parsed.key)), correlationId: ids.correlationId, requestId: ids.owner });
  const p = await plan(deps, module, ids.deadline, log);
  const turns = deps.queuedClaims;
  // A send that waits for its permit (the rate is what limits: a backlog's first second) is pending from
  // here until it has been made: queued claims take turns meanwhile, so the event loop and the database are
  // free at its slot. A permit due now (far below the rate) holds no one up: a steady 250/s at a ceiling of
  // 1000/s, held to two queued writes at a time whenever a send was pending, was accepted at 146/s.
  if (p.kind !== 'inline' || !turns || p.at - deps.clock() <= deps.pacer.settings.lateMs) return submitPlanned(deps, module, parsed, ids, checkpoints, log, p);
  turns.inline++;
  try {
    return await submitPlanned(deps, module, parsed, ids, checkpoints, log, p);
  } finally {
    turns.inline--;
  }
}

async function submitPlanned(deps: EngineDeps, module: SystemModule, parsed: ParsedPayment, ids: IntakeIds, checkpoints: Record<string, unknown> | undefined, log: Logger, p: Plan): Promise<SubmitResult> {
  const first = shaped(draft(module, parsed, ids, deps.clock(), deps.settings.ttlDays, checkpoints), p, deps, ids.owner);
  // What a claim takes here is timed from its write, not from a wait for its turn.
  const timed = async () => {
    const started = deps.clock();
    try {
      return await claimOwn(deps, first);
    } finally {
      deps.pacer.noteClaim(deps.clock() - started);
    }
  };
  const turns = deps.queuedClaims;
  for (let i = 0; i < 3; i++) {
    // A payment queued here waits its turn to be written while a send waits for its permit in this process
    // (see submit): that send's claim and request keep the database and the event loop to themselves.
    const claim = p.kind === 'inline' || !turns || turns.inline === 0 ? await timed() : await queuedTurn(deps, turns.turn, timed);
    if (claim.claimed) {
      log.info('claimed', { plan: p.kind });
      return { kind: 'created', record: await proceed(deps, module, first, p, log) };
    }
    const existing = claim.existing;
    const d = decide(existing, { type: 'delivered', request: parsed.request, hash: first.payloadHash, ...(ids.caller ? { caller: ids.caller } : {}) }, engineContext(deps, module, deps.clock()));
    if (d.kind !== 'write') {
      switch (d.kind === 'none' || d.kind === 'refuse' ? d.answer : undefined) {
        case 'foreign':
          log.warn('key belongs to another caller: refused');
          return { kind: 'foreign', record: existing };
        case 'duplicate':
          log.info('duplicate delivery suppressed', { status: existing.status });
          deps.metrics.count(module.name, 'duplicate_suppressed');
          return { kind: 'duplicate', record: existing };
        case 'earlier-revision':
          log.info('an earlier revision delivered again: answered as that revision, nothing sent');
          deps.metrics.count(module.name, 'duplicate_suppressed');
          return d.kind === 'none' && d.revision ? { kind: 'earlier-revision', record: existing, revision: d.revision } : { kind: 'duplicate', record: existing };
        case 'downstream-holds':
          log.warn('a correction refused: the downstream holds or may hold the payment', { status: existing.status });
          return { kind: 'downstream-holds', record: existing, reason: d.said };
        default:
          log.warn('key reused with another payload: refused', { status: existing.status });
          return { kind: 'conflict', record: existing };
      }
    }
    const revised = shaped(d.record, p, deps, ids.owner);
    // The writer's own caller goes into the write: the store refuses it if the record is no longer theirs (issue 20).
    const written = { ...revised, correlationId: ids.correlationId, version: existing.version + 1, ...(ids.caller ? { caller: ids.caller } : {}) };
    if (await replaceOwn(deps, written, existing.version)) {
      log.info('new revision', { revision: revised.revision, previous: existing.status });
      return { kind: 'revised', record: await proceed(deps, module, written, p, log) };
    }
    // The record changed under us: decide again on what is there now.
  }
  const current = await deps.store.get(first.pk);
  return { kind: 'conflict', record: current ?? first };
}

export type UpsertResult =
  | { kind: 'created'; record: PaymentRecord }
  /** The same body as last time: nothing sent; `confirmedAt` recorded. */
  | { kind: 'unchanged'; record: PaymentRecord }
  /** A new version of the body: sent as an update. */
  | { kind: 'changed'; record: PaymentRecord }
  /** A version is pending or waits for an operator: the caller should try again later. */
  | { kind: 'busy'; record: PaymentRecord }
  /** The key belongs to another caller: nothing was written or sent (issue 20, item 1). */
  | { kind: 'foreign'; record: PaymentRecord };

/** Whether the record belongs to another caller than `caller` (a record without one belongs to nobody yet). */
function foreignTo(record: PaymentRecord, caller: string | undefined): boolean {
  return record.caller !== undefined && caller !== undefined && record.caller !== caller;
}

/** Whether someone may be working on the record right now (a live lease, or a queued attempt not yet made). */
function pending(record: PaymentRecord, now: number): boolean {
  return record.fence !== undefined || (record.leaseUntil !== undefined && record.leaseUntil > now) || record.status === 'retrying' || record.status === 'reconciling';
}

/**
 * For registers kept in step rather than payments posted once (Kontantanalys): the key's record is
 * created on first sight, a changed body becomes a new version that is sent, an unchanged one sends
 * nothing. Every write is still conditional on the version read.
 */
export async function upsert(deps: EngineDeps, module: SystemModule, parsed: ParsedPayment, ids: IntakeIds): Promise<UpsertResult> {
  const pk = recordPk(module.name, parsed.tenant, parsed.key);
  const hash = payloadHash(parsed.request);
  const log = deps.log.child({ system: module.name, ref: hashId(pk), correlationId: ids.correlationId });
  for (let i = 0; i < 3; i++) {
    const existing = await deps.store.get(pk);
    const stamp = new Date(deps.clock()).toISOString();
    if (!existing) {
      const first = await submit(deps, module, parsed, ids, { confirmedAt: stamp });
      if (first.kind === 'created' || first.kind === 'foreign') return { kind: first.kind, record: first.record };
      continue; // someone created it meanwhile: decide again on what is there now
    }
    // Decided on the record as read; each write below also carries the caller, so the store refuses it
    // if the record is not theirs by the time it lands (issue 20, item 1).
    if (foreignTo(existing, ids.caller)) return { kind: 'foreign', record: existing };
    if (samePayload(existing.payloadHash, parsed.request, hash)) return { kind: 'unchanged', record: (await noteConfirmed(deps, existing, stamp, ids.caller)) ?? existing };
    // A version pending, being reconciled (a create may have happened) or waiting for an operator must
    // settle first: sending a new version now could create the object twice. So must a held or failed one
    // whose send may have landed unconfirmed (the mark decide keeps): the module would find that create
    // and record this version as posted without ever sending it (the review of issue 19).
    if (pending(existing, deps.clock()) || unconfirmedOf(existing, module.ambiguity)) return { kind: 'busy', record: existing };
    const p = await plan(deps, module, ids.deadline, log);
    const now = deps.clock();
    const { error: _e, result: _r, reconcileResends: _c, ...base } = settledBase(existing, now);
    const next = shaped(
      {
        ...base,
        status: 'retrying',
        request: parsed.request,
        payloadHash: hash,
        failures: 0,
        budgetFrom: now,
        checkpoints: { ...existing.checkpoints, confirmedAt: stamp },
        correlationId: ids.correlationId,
        ...(ids.caller ? { caller: ids.caller } : {}),
        history: withHistory(existing, now, 'changed', 'a new version of the data was received'),
      },
      p,
      deps,
      ids.owner,
    );
    const written = { ...next, version: existing.version + 1 };
    if (!(await replaceOwn(deps, written, existing.version))) continue;
    return { kind: 'changed', record: await proceed(deps, module, written, p, log) };
  }
  const last = (await deps.store.get(pk)) as PaymentRecord;
  return { kind: last && foreignTo(last, ids.caller) ? 'foreign' : 'busy', record: last };
}

/**
 * Records that the integrator confirmed the data now. Best effort: skipped while anyone may be working on
 * the record (a write under them would make their own writes fail), and a lost race only delays the
 * confirmation to the next PUT.
 */
async function noteConfirmed(deps: EngineDeps, record: PaymentRecord, stamp: string, caller: string | undefined): Promise<PaymentRecord | undefined> {
  if (pending(record, deps.clock())) return undefined;
  const next = { ...record, checkpoints: { ...record.checkpoints, confirmedAt: stamp }, ...(caller ? { caller } : {}) };
  return (await deps.store.replace(next, record.version)) ? { ...next, version: record.version + 1 } : undefined;
}

/**
 * Sends a settled record again under a new fence: a scheduled refresh that changed only derived data
 * (Kontantanalys' timelinessDate). Refused while anyone may be working on it. Returns the queued record.
 */
export async function reopen(deps: EngineDeps, pk: string, opts: { reason: string; checkpoints?: Record<string, unknown> }): Promise<PaymentRecord | undefined> {
  const current = await deps.store.get(pk);
  if (!current || pending(current, deps.clock()) || current.status !== 'posted') return undefined;
  const now = deps.clock();
  const next: PaymentRecord = {
    ...scheduled({ ...current, status: 'retrying' }, now, now, deps.pacer.mintFence()),
    failures: 0,
    budgetFrom: now,
    checkpoints: { ...current.checkpoints, ...opts.checkpoints },
    history: withHistory(current, now, 'reopened', opts.reason),
  };
  if (!(await deps.store.replace(next, current.version))) return undefined;
  const written = { ...next, version: current.version + 1 };
  await enqueue(deps, written, now, 'reopened', deps.log.child({ system: current.system, ref: hashId(pk) }));
  return written;
}
