import { hashId, type Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { RetryQueue } from '../queue/port.js';
import type { RateLimiter, RecordStore } from '../store/port.js';
import { ConfigError, LeaseLostError, type AttemptContext, type ParsedPayment, type SystemModule } from '../systems/types.js';
import { payloadHash } from './canonical.js';
import { applyOutcome, leasedBy, scheduled, settledBase, withHistory, type EngineSettings } from './lifecycle.js';
import { retryDelayMs, sqsDelaySeconds, sqsSlotDelaySeconds } from './retry-policy.js';
import { ACTIVE_STATUSES, recordPk, type Outcome, type PaymentRecord } from './types.js';

export interface EngineDeps {
  store: RecordStore;
  queue: RetryQueue;
  limiter: RateLimiter;
  systems: (name: string) => SystemModule | undefined;
  settings: EngineSettings;
  log: Logger;
  metrics: Metrics;
  clock: () => number;
  random: () => number;
  sleep: (ms: number) => Promise<void>;
}

export type SubmitResult =
  /** First delivery of the key: the record after the inline attempt. */
  | { kind: 'created'; record: PaymentRecord }
  /** The key was seen before with the same payload: nothing was sent. */
  | { kind: 'duplicate'; record: PaymentRecord }
  /** The key was seen before with another payload: refused, nothing was sent. */
  | { kind: 'conflict'; record: PaymentRecord };

/** Claims the key with one conditional write, then makes the first attempt in this invocation. */
export async function submit(
  deps: EngineDeps,
  module: SystemModule,
  parsed: ParsedPayment,
  ids: { owner: string; correlationId: string; deadline?: number },
): Promise<SubmitResult> {
  const now = deps.clock();
  const leaseUntil = now + deps.settings.leaseMs;
  const stamp = new Date(now).toISOString();
  const record: PaymentRecord = {
    pk: recordPk(module.name, parsed.tenant, parsed.key),
    system: module.name,
    tenant: parsed.tenant,
    key: parsed.key,
    status: 'retrying',
    version: 1,
    payloadHash: payloadHash(parsed.request),
    request: parsed.request,
    attempts: 0,
    failures: 0,
    leaseOwner: ids.owner,
    leaseUntil,
    nextAttemptAt: leaseUntil,
    dueShard: 'due',
    checkpoints: {},
    history: [{ at: stamp, event: 'received' }],
    correlationId: ids.correlationId,
    createdAt: stamp,
    updatedAt: stamp,
    ttl: Math.floor(now / 1000) + deps.settings.ttlDays * 86_400,
  };
  const log = deps.log.child({ system: module.name, ref: hashId(record.pk), correlationId: ids.correlationId, requestId: ids.owner });
  const claim = await deps.store.claim(record);
  if (!claim.claimed) {
    const existing = claim.existing;
    if (existing.payloadHash !== record.payloadHash) {
      log.warn('key reused with another payload: refused', { status: existing.status });
      return { kind: 'conflict', record: existing };
    }
    log.info('duplicate delivery suppressed', { status: existing.status });
    deps.metrics.count(module.name, 'duplicate_suppressed');
    return { kind: 'duplicate', record: existing };
  }
  log.info('claimed');
  return { kind: 'created', record: await attempt(deps, module, record, log, ids.deadline) };
}

export type UpsertResult =
  | { kind: 'created'; record: PaymentRecord }
  /** The same body as last time: nothing sent; `confirmedAt` recorded. */
  | { kind: 'unchanged'; record: PaymentRecord }
  /** A new version of the body: sent as an update. */
  | { kind: 'changed'; record: PaymentRecord }
  /** An attempt for this key is in flight: the caller should try again shortly. */
  | { kind: 'busy'; record: PaymentRecord };

/**
 * For registers kept in step rather than payments posted once (Kontantanalys): the key's record is
 * created on first sight, a changed body becomes a new version that is sent, an unchanged one sends
 * nothing. Every write is still conditional on the version read.
 */
export async function upsert(
  deps: EngineDeps,
  module: SystemModule,
  parsed: ParsedPayment,
  ids: { owner: string; correlationId: string; deadline?: number },
): Promise<UpsertResult> {
  const pk = recordPk(module.name, parsed.tenant, parsed.key);
  const now = deps.clock();
  const stamp = new Date(now).toISOString();
  const hash = payloadHash(parsed.request);
  for (let i = 0; i < 3; i++) {
    const existing = await deps.store.get(pk);
    if (!existing) {
      const first = await submit(deps, module, parsed, ids);
      if (first.kind === 'created') {
        await noteConfirmed(deps, first.record, stamp);
        return { kind: 'created', record: first.record };
      }
      continue; // someone created it meanwhile: decide again on what is there now
    }
    if (existing.payloadHash === hash) {
      return { kind: 'unchanged', record: (await noteConfirmed(deps, existing, stamp)) ?? existing };
    }
    // A version in flight, being reconciled (a create may have happened) or waiting for an operator
    // must settle first: sending a new version now could create the object twice.
    if ((existing.leaseUntil !== undefined && existing.leaseUntil > now) || existing.status === 'reconciling' || existing.status === 'unknown') {
      return { kind: 'busy', record: existing };
    }
    const { error: _e, result: _r, ...base } = existing;
    const next: PaymentRecord = {
      ...leasedBy(base as PaymentRecord, ids.owner, now, deps.settings.leaseMs),
      status: 'retrying',
      request: parsed.request,
      payloadHash: hash,
      failures: 0,
      checkpoints: { ...existing.checkpoints, confirmedAt: stamp },
      correlationId: ids.correlationId,
      history: withHistory(existing, now, 'changed', 'a new version of the data was received'),
    };
    if (!(await deps.store.replace(next, existing.version))) continue;
    const log = deps.log.child({ system: module.name, ref: hashId(pk), correlationId: ids.correlationId });
    return { kind: 'changed', record: await attempt(deps, module, { ...next, version: existing.version + 1 }, log, ids.deadline) };
  }
  const current = await deps.store.get(pk);
  return { kind: 'busy', record: current as PaymentRecord };
}

/**
 * Records that the integrator confirmed the data now. Best effort: skipped while an attempt holds
 * the lease (bumping the version under it would make that attempt's own writes fail), and a lost race
 * only delays the confirmation to the next PUT.
 */
async function noteConfirmed(deps: EngineDeps, record: PaymentRecord, stamp: string): Promise<PaymentRecord | undefined> {
  // `record` was just read or written by the caller; a stale version only makes the write fail.
  if (record.leaseUntil !== undefined && record.leaseUntil > deps.clock()) return undefined;
  const next = { ...record, checkpoints: { ...record.checkpoints, confirmedAt: stamp } };
  return (await deps.store.replace(next, record.version)) ? { ...next, version: record.version + 1 } : undefined;
}

/**
 * Sends a settled record again under a new lease: an operator's redrive of a `held` payment, or a
 * scheduled refresh that changed only derived data (Kontantanalys' timelinessDate). Refused while an
 * attempt is in flight. Returns the record after the attempt, or undefined when it could not start.
 */
export async function reopen(
  deps: EngineDeps,
  pk: string,
  opts: { owner: string; reason: string; checkpoints?: Record<string, unknown> },
): Promise<PaymentRecord | undefined> {
  const current = await deps.store.get(pk);
  if (!current) return undefined;
  const module = deps.systems(current.system);
  if (!module) throw new Error(`no module for system ${current.system}`);
  const now = deps.clock();
  if (current.leaseUntil !== undefined && current.leaseUntil > now) return undefined;
  const { error: _e, ...base } = current;
  const next: PaymentRecord = {
    ...leasedBy(base as PaymentRecord, opts.owner, now, deps.settings.leaseMs),
    status: 'retrying',
    failures: 0,
    checkpoints: { ...current.checkpoints, ...opts.checkpoints },
    history: withHistory(current, now, 'reopened', opts.reason),
  };
  if (!(await deps.store.replace(next, current.version))) return undefined;
  const log = deps.log.child({ system: current.system, ref: hashId(pk), correlationId: current.correlationId });
  return attempt(deps, module, { ...next, version: current.version + 1 }, log);
}

/**
 * The retry worker's step for one record: take the lease with a conditional write, then attempt,
 * reconcile or park as the record's state says. Returns what it did, for logs and tests.
 */
export async function processRecord(deps: EngineDeps, pk: string, owner: string, deadline?: number): Promise<string> {
  const current = await deps.store.get(pk);
  if (!current) return 'missing';
  const log = deps.log.child({ system: current.system, ref: hashId(pk), correlationId: current.correlationId });
  if (!ACTIVE_STATUSES.includes(current.status)) return `settled:${current.status}`;
  const module = deps.systems(current.system);
  if (!module) throw new Error(`no module for system ${current.system}`);
  const now = deps.clock();
  if (current.leaseUntil !== undefined && current.leaseUntil > now) return 'in-flight';
  if (current.leaseUntil === undefined && current.nextAttemptAt !== undefined && current.nextAttemptAt - now > 1_000) {
    // Woken early (a wait longer than SQS's 900 s, or a sweep duplicate): sleep again on the queue.
    await enqueue(deps, current, current.nextAttemptAt, 'deferred', log, current.slot !== undefined);
    return 'deferred';
  }

  const expired = current.leaseUntil !== undefined;
  let leased = leasedBy(current, owner, now, deps.settings.leaseMs);
  if (expired) {
    // The previous holder died or timed out mid-attempt: it may have sent. That attempt counts.
    leased = {
      ...leased,
      attempts: current.attempts + 1,
      failures: current.failures + 1,
      history: withHistory(current, now, 'lease_expired', 'an attempt did not finish: its outcome is ambiguous'),
    };
  }
  if (!(await deps.store.replace(leased, current.version))) return 'raced';
  leased = { ...leased, version: current.version + 1 };

  if (expired) {
    log.warn('lease expired mid-attempt: ambiguous', { policy: module.ambiguity, attempts: leased.attempts });
    if (module.ambiguity === 'park') {
      await settle(deps, leased, parkUnknown(leased, now, 'a worker died mid-attempt'), log);
      return 'parked';
    }
    if (module.ambiguity === 'reconcile') return reconcile(deps, module, leased, log);
    if (leased.failures >= deps.settings.maxFailures) {
      await settle(deps, leased, giveUp(leased, now, `gave up after ${leased.failures} failed attempts`), log);
      return 'failed';
    }
  } else if (leased.status === 'reconciling') {
    return reconcile(deps, module, leased, log);
  }
  const after = await attempt(deps, module, leased, log, deadline);
  return `attempted:${after.status}`;
}

/**
 * Every minute: re-enqueues active records whose wake-up is overdue (a lost SendMessage, a crashed
 * worker, an expired lease), and reports what the alarms watch: how many are overdue, how late the
 * oldest is, and how many payments have been held for more than an hour.
 */
export async function sweep(deps: EngineDeps, limit = 500): Promise<{ enqueued: number; heldOverAnHour: number }> {
  const now = deps.clock();
  const overdue = await deps.store.due(now - deps.settings.sweepGraceMs, limit);
  const bySystem = new Map<string, { count: number; oldest: number }>();
  for (const { pk, at } of overdue) {
    await deps.queue.send({ pk, reason: 'sweep' }, 0);
    const system = pk.split('#')[0] as string;
    const s = bySystem.get(system) ?? { count: 0, oldest: at };
    bySystem.set(system, { count: s.count + 1, oldest: Math.min(s.oldest, at) });
  }
  for (const [system, s] of bySystem) {
    deps.metrics.count(system, 'overdue_records', s.count);
    deps.metrics.seconds(system, 'oldest_overdue_age', (now - s.oldest) / 1000);
  }
  if (overdue.length > 0) deps.log.warn('sweep re-enqueued overdue records', { count: overdue.length });
  const held = await deps.store.due(now - 3_600_000, limit, 'held');
  const heldBySystem = new Map<string, number>();
  for (const { pk } of held) heldBySystem.set(pk.split('#')[0] as string, (heldBySystem.get(pk.split('#')[0] as string) ?? 0) + 1);
  for (const [system, count] of heldBySystem) deps.metrics.count(system, 'held_over_an_hour', count);
  return { enqueued: overdue.length, heldOverAnHour: held.length };
}

/** One send with a shared-rate slot, then the outcome recorded. `leased` must hold this worker's lease. */
async function attempt(deps: EngineDeps, module: SystemModule, start: PaymentRecord, log: Logger, deadline?: number): Promise<PaymentRecord> {
  let leased = start;
  let now = deps.clock();
  if (deadline !== undefined && deadline - now < deps.settings.sendBudgetMs) {
    // Too little time left in this invocation to send and hear back: the queue's worker sends it.
    const later: PaymentRecord = { ...scheduled(leased, now, now), history: withHistory(leased, now, 'deferred', 'too little time left in this invocation; nothing was sent') };
    return settle(deps, leased, later, log, now);
  }
  let slot = leased.slot;
  try {
    if (!slot || !(await deps.limiter.isCurrent(module.name, slot.gen))) {
      slot = await deps.limiter.reserve(module.name, module.maxPerSecond, now);
    }
  } catch (err) {
    // Nothing was sent: release the lease with a retry time, so this never turns into an
    // expired lease (which would count as ambiguous) because the limiter's table hiccuped.
    log.error('rate limiter unavailable; retrying later', { error: err });
    const wakeAt = now + retryDelayMs({ failures: leased.failures }, deps.random, deps.settings.backoff);
    const { slot: _s, ...rest } = leased;
    const later: PaymentRecord = { ...scheduled(rest as PaymentRecord, now, wakeAt), history: withHistory(leased, now, 'deferred', 'rate limiter unavailable; nothing was sent') };
    return settle(deps, leased, later, log, wakeAt);
  }
  if (slot.at - now > deps.settings.inlineWaitMs) {
    // Not our turn yet: keep the slot, release the lease, and let the queue wake us at the slot.
    const waiting: PaymentRecord = { ...scheduled(leased, now, slot.at), slot };
    if (!(await deps.store.replace(waiting, leased.version))) return (await deps.store.get(leased.pk)) ?? leased;
    const written = { ...waiting, version: leased.version + 1 };
    await enqueue(deps, written, slot.at, 'slot', log, true);
    return written;
  }
  if (slot.at > now) await deps.sleep(slot.at - now);

  const holder = { record: leased };
  const started = deps.clock();
  const outcome = await safePost(module, leased, checkpointer(deps, holder), log);
  deps.metrics.milliseconds(module.name, 'post_latency', deps.clock() - started);
  // Checkpoints written during the post moved the version on: settle from the latest one.
  leased = holder.record;
  now = deps.clock();
  const decision = applyOutcome(leased, outcome, { now, policy: module.ambiguity, settings: deps.settings, random: deps.random });
  if (decision.pauseUntil !== undefined) await deps.limiter.pause(module.name, decision.pauseUntil);
  log.info('attempt', {
    outcome: outcome.type,
    httpStatus: 'httpStatus' in outcome ? outcome.httpStatus : undefined,
    status: decision.record.status,
    attempts: decision.record.attempts,
  });
  return settle(deps, leased, decision.record, log, decision.wakeAt, outcome.type === 'posted');
}

/** A context whose `checkpoint` writes progress under this worker's lease and keeps `holder` current. */
function checkpointer(deps: EngineDeps, holder: { record: PaymentRecord }): AttemptContext {
  return {
    correlationId: holder.record.correlationId,
    record: holder.record,
    async checkpoint(patch) {
      const current = holder.record;
      const next: PaymentRecord = { ...current, checkpoints: { ...current.checkpoints, ...patch }, updatedAt: new Date(deps.clock()).toISOString() };
      if (!(await deps.store.replace(next, current.version))) throw new LeaseLostError();
      holder.record = { ...next, version: current.version + 1 };
    },
  };
}

async function safePost(module: SystemModule, leased: PaymentRecord, ctx: AttemptContext, log: Logger): Promise<Outcome> {
  try {
    return await module.post(leased.request, ctx);
  } catch (err) {
    if (err instanceof ConfigError) return { type: 'auth', message: err.message };
    if (err instanceof LeaseLostError) return { type: 'ambiguous', message: err.message };
    // A module bug after the request may have left: treat as ambiguous, never as "not sent".
    log.error('system module threw', { error: err });
    return { type: 'ambiguous', message: `internal error while posting: ${(err as Error).message}` };
  }
}

/**
 * Writes the next state conditionally on the leased version. If the lease was lost meanwhile (it
 * expired and another worker took over), a downstream success is still recorded: knowing it posted
 * beats any ambiguity the other worker is working from.
 */
async function settle(
  deps: EngineDeps,
  leased: PaymentRecord,
  next: PaymentRecord,
  log: Logger,
  wakeAt?: number,
  posted = false,
): Promise<PaymentRecord> {
  if (await deps.store.replace(next, leased.version)) {
    const written = { ...next, version: leased.version + 1 };
    countOutcome(deps, written);
    if (wakeAt !== undefined) await enqueue(deps, written, wakeAt, next.status, log);
    return written;
  }
  log.warn('lease lost before the outcome was recorded', { outcome: next.status });
  for (let i = 0; i < 3; i++) {
    const current = await deps.store.get(leased.pk);
    if (!current) break;
    if (!posted || current.status === 'posted') return current;
    const now = deps.clock();
    const { error: _e, ...rest } = settledBase(current, now);
    const fixed: PaymentRecord = {
      ...rest,
      status: 'posted',
      attempts: Math.max(current.attempts, next.attempts),
      ...(next.result ? { result: next.result } : {}),
      history: withHistory(current, now, 'posted', 'recorded late by a worker whose lease had expired'),
    };
    if (await deps.store.replace(fixed, current.version)) return { ...fixed, version: current.version + 1 };
  }
  return (await deps.store.get(leased.pk)) ?? next;
}

async function reconcile(deps: EngineDeps, module: SystemModule, start: PaymentRecord, log: Logger): Promise<string> {
  const now = deps.clock();
  let leased = start;
  if (!module.reconcile) {
    await settle(deps, leased, parkUnknown(leased, now, `${module.name} cannot be asked whether the payment arrived`), log);
    return 'parked';
  }
  const holder = { record: leased };
  let result: Awaited<ReturnType<NonNullable<SystemModule['reconcile']>>>;
  try {
    result = await module.reconcile(leased, checkpointer(deps, holder));
  } catch (err) {
    if (err instanceof LeaseLostError) return 'raced';
    result = { type: 'inconclusive', message: (err as Error).message };
  }
  leased = holder.record;
  log.info('reconciled', { result: result.type });
  if (result.type === 'unknowable') {
    await settle(deps, leased, parkUnknown(leased, now, result.message), log);
    return 'parked';
  }
  if (result.type === 'found') {
    const { error: _e, ...rest } = settledBase(leased, now);
    const found: PaymentRecord = {
      ...rest,
      status: 'posted',
      result: { httpStatus: 200, body: result.body, note: 'found downstream by reconciliation' },
      history: withHistory(leased, now, 'posted', 'found downstream by reconciliation; not sent again'),
    };
    await settle(deps, leased, found, log, undefined, true);
    return 'reconciled:found';
  }
  if (result.type === 'absent') {
    const resends = Number(leased.checkpoints.reconcileResends ?? 0);
    if (resends >= 1) {
      await settle(deps, leased, parkUnknown(leased, now, 'still not found downstream after one re-send'), log);
      return 'parked';
    }
    const again: PaymentRecord = {
      ...leased,
      status: 'retrying',
      checkpoints: { ...leased.checkpoints, reconcileResends: resends + 1 },
      history: withHistory(leased, now, 'reconciled', 'not found downstream: sending once more'),
    };
    const after = await attempt(deps, module, again, log);
    return `reconciled:resent:${after.status}`;
  }
  const failures = leased.failures + 1;
  if (failures >= deps.settings.maxFailures) {
    await settle(deps, leased, parkUnknown({ ...leased, failures }, now, `reconciliation inconclusive: ${result.message}`), log);
    return 'parked';
  }
  const wakeAt = now + retryDelayMs({ failures }, deps.random, deps.settings.backoff);
  const next: PaymentRecord = {
    ...scheduled({ ...leased, failures }, now, wakeAt),
    status: 'reconciling',
    history: withHistory(leased, now, 'reconcile_inconclusive', result.message),
  };
  await settle(deps, leased, next, log, wakeAt);
  return 'reconciling';
}

/** One metric per recorded outcome (issue 6): what an operator's dashboard and alarms count. */
function countOutcome(deps: EngineDeps, record: PaymentRecord): void {
  const name =
    record.status === 'retrying' || record.status === 'reconciling'
      ? record.error?.kind === 'rate_limited'
        ? 'rate_limited'
        : 'retried'
      : record.status;
  deps.metrics.count(record.system, name);
}

function parkUnknown(record: PaymentRecord, now: number, why: string): PaymentRecord {
  return {
    ...settledBase(record, now),
    dueShard: 'unknown',
    nextAttemptAt: now,
    status: 'unknown',
    error: { kind: 'ambiguous', message: why },
    history: withHistory(record, now, 'unknown', `${why}; parked for an operator, never re-posted automatically`),
  };
}

function giveUp(record: PaymentRecord, now: number, why: string): PaymentRecord {
  return {
    ...settledBase(record, now),
    status: 'failed',
    error: { kind: 'budget', message: why },
    history: withHistory(record, now, 'failed', why),
  };
}

async function enqueue(deps: EngineDeps, record: PaymentRecord, at: number, reason: string, log: Logger, slot = false): Promise<void> {
  const now = deps.clock();
  try {
    await deps.queue.send({ pk: record.pk, reason }, slot ? sqsSlotDelaySeconds(at, now) : sqsDelaySeconds(at, now));
  } catch (err) {
    // The record already says when it is due: the sweep re-enqueues it. Nothing is lost.
    log.error('retry enqueue failed; the sweep will pick the record up', { error: err });
  }
}
