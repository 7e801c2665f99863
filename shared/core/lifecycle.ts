import { payloadHash } from './canonical.js';
import { retryDelayMs, type BackoffSettings } from './retry-policy.js';
import {
  HISTORY_LIMIT,
  type Unconfirmed,
  type AmbiguityPolicy,
  type Fence,
  type HistoryEntry,
  type Outcome,
  type PaymentRecord,
  type RecordError,
  type RevisionSummary,
} from './types.js';

export interface EngineSettings {
  /**
   * The longest an attempt may hold a record: its deadline is never later than its start plus this. In
   * AWS the worker's function timeout is shorter (60 s < 90 s), so no invocation outlives its lease.
   */
  leaseMs: number;
  /** The most one attempt's downstream calls may take, a token fetch included (the AbortSignal's deadline). */
  attemptTimeoutMs: number;
  /** An in-process attempt (the HTTP route's) must leave this much of its deadline to record the outcome. */
  settleMarginMs: number;
  /** The retry budget, measured in time from the claim (or the revision's start); 429s never spend it. */
  budgetMs: number;
  /** Per-system budgets (`<SYSTEM>_RETRY_BUDGET_HOURS`), overriding `budgetMs`. */
  budgetBySystem: Record<string, number>;
  ttlDays: number;
  /** Wait before reading a downstream back after an ambiguous outcome, so the read is consistent. */
  reconcileDelayMs: number;
  /** The HTTP route sends in-process only if its permit comes within this; otherwise it queues (202). */
  inlineWaitMs: number;
  /**
   * Claims of payments this process queues (202) that it writes at once while a send waits for its
   * permit here; the rest wait their turn (EngineDeps.queuedClaims). A burst of them otherwise
   * made the claims ahead of the first sends miss their send slots (issue 23, the burst start).
   */
  queuedClaimsAtOnce: number;
  /** The sweep looks at records overdue by more than this. */
  sweepGraceMs: number;
  /**
   * The most two machines' clocks may disagree (the sweep's and a worker's, issue 19): an unfinished
   * attempt is taken as ended only this long after the deadline its own clock recorded (plus the settle
   * margin), so a skew up to this never lets the sweep strand a live attempt.
   */
  clockSkewMs: number;
  /** Shards of the due and status indexes (issue 13): spread writes over this many partitions per system. */
  indexShards: number;
  backoff: BackoffSettings;
}

export const DEFAULT_SETTINGS: EngineSettings = {
  leaseMs: 90_000,
  attemptTimeoutMs: 20_000,
  settleMarginMs: 2_000,
  budgetMs: 72 * 3_600_000,
  budgetBySystem: {},
  ttlDays: 400,
  reconcileDelayMs: 5_000,
  inlineWaitMs: 1_000,
  queuedClaimsAtOnce: 2,
  sweepGraceMs: 30_000,
  clockSkewMs: 2_000,
  indexShards: 8,
  backoff: { baseMs: 1_000, capMs: 15 * 60_000 },
};

export function budgetFor(settings: EngineSettings, system: string): number {
  return settings.budgetBySystem[system] ?? settings.budgetMs;
}

/** Downstream texts are kept, but never so large that the record cannot be written (DynamoDB's 400 KB). */
export const MAX_ERROR_TEXT = 2_000;
export const MAX_HISTORY_DETAIL = 500;
export const MAX_RESULT_BYTES = 8_000;

export function capText(text: string, max = MAX_ERROR_TEXT): string {
  return text.length <= max ? text : `${text.slice(0, max)}… [cut: ${text.length - max} more characters]`;
}

/** A downstream body as stored: as it came, or a marked preview when it is too large to keep. */
export function capBody(body: unknown): unknown {
  if (body === undefined) return undefined;
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  if (text === undefined || Buffer.byteLength(text, 'utf8') <= MAX_RESULT_BYTES) return body;
  return { truncated: true, bytes: Buffer.byteLength(text, 'utf8'), preview: capText(text, MAX_ERROR_TEXT) };
}

export function withHistory(record: PaymentRecord, at: number, event: string, detail?: string): HistoryEntry[] {
  const entry: HistoryEntry = detail === undefined ? { at: new Date(at).toISOString(), event } : { at: new Date(at).toISOString(), event, detail: capText(detail, MAX_HISTORY_DETAIL) };
  return [...record.history, entry].slice(-HISTORY_LIMIT);
}

/** The record without its lease, fence and schedule: the base of every settled state. */
export function settledBase(record: PaymentRecord, now: number): PaymentRecord {
  const { leaseOwner: _o, leaseUntil: _u, sending: _s, fence: _f, nextAttemptAt: _n, dueShard: _d, ...rest } = record;
  return { ...rest, updatedAt: new Date(now).toISOString() };
}

/** An active record waiting for the queued attempt that holds `fence`, due at `at`. */
export function scheduled(record: PaymentRecord, now: number, at: number, fence: Fence): PaymentRecord {
  return { ...settledBase(record, now), status: record.status, fence, nextAttemptAt: at };
}

/**
 * Whether `existing` is the very item `written` put there: same version and update time, and the same
 * lease (its owner is this request) or the same fence (minted here, unique). A held record has neither
 * and is never taken for one: nothing sends it either way.
 */
export function ownWrite(existing: PaymentRecord, written: PaymentRecord): boolean {
  if (existing.version !== written.version || existing.updatedAt !== written.updatedAt || existing.payloadHash !== written.payloadHash) return false;
  if (written.fence) return existing.fence?.id === written.fence.id && existing.fence.n === written.fence.n;
  if (written.leaseOwner !== undefined) return existing.leaseOwner === written.leaseOwner && existing.leaseUntil === written.leaseUntil;
  return false;
}

/** The record under an in-process attempt: `sending` is set because the request leaves right after this write. */
export function leasedForSending(record: PaymentRecord, owner: string, now: number, until: number): PaymentRecord {
  const { fence: _f, ...rest } = record;
  return { ...rest, leaseOwner: owner, leaseUntil: until, sending: true, nextAttemptAt: until, updatedAt: new Date(now).toISOString() };
}

/** What a failed attempt leaves on the record: the kind, the downstream's message (capped), status and code. */
export function recordError(kind: RecordError['kind'], outcome: Exclude<Outcome, { type: 'posted' }>): RecordError {
  return {
    kind,
    message: capText(outcome.message),
    ...(outcome.httpStatus ? { httpStatus: outcome.httpStatus } : {}),
    ...('code' in outcome && outcome.code ? { code: capText(outcome.code, 100) } : {}),
  };
}

/** The record's unconfirmed send after an ambiguous answer at `now`: the first such send's time is kept. */
export function unconfirmedAfter(record: PaymentRecord, now: number): Unconfirmed {
  return { since: record.unconfirmed?.since ?? now, at: now, revision: record.revision ?? 1 };
}

export interface Decision {
  record: PaymentRecord;
  /** When set, a queue message should wake a worker at this time (the record carries the new fence). */
  wakeAt?: number;
}

export interface OutcomeContext {
  now: number;
  policy: AmbiguityPolicy;
  settings: EngineSettings;
  random: () => number;
  /** A fresh fence for the next queued attempt. */
  fence: () => Fence;
}

function budgetSpent(record: PaymentRecord, ctx: OutcomeContext): boolean {
  return ctx.now - record.budgetFrom >= budgetFor(ctx.settings, record.system);
}

function budgetText(record: PaymentRecord, ctx: OutcomeContext): string {
  return `the retry budget of ${Math.round(budgetFor(ctx.settings, record.system) / 3_600_000)} h ran out`;
}

/** Given up on retrying without a definitive answer: held for an operator (alarmed), never `failed`. */
function heldForBudget(record: PaymentRecord, attempts: number, failures: number, ctx: OutcomeContext, last: string): PaymentRecord {
  const message = `${budgetText(record, ctx)} after ${attempts} attempts; last: ${last}`;
  return {
    ...settledBase(record, ctx.now),
    attempts,
    failures,
    status: 'held',
    nextAttemptAt: ctx.now,
    error: { kind: 'budget', message: capText(message) },
    history: withHistory(record, ctx.now, 'held', `${message}. Redrive it once the downstream works again`),
  };
}

/** Parked for an operator: the payment may or may not have arrived, and nothing will send it again by itself. */
export function parkedUnknown(record: PaymentRecord, now: number, why: string, attempts = record.attempts): PaymentRecord {
  return {
    ...settledBase(record, now),
    attempts,
    status: 'unknown',
    nextAttemptAt: now,
    error: { kind: 'ambiguous', message: capText(why) },
    history: withHistory(record, now, 'unknown', `${why}; parked for an operator, never re-posted automatically`),
  };
}

/**
 * The next state of a record after one attempt, as a pure function (DESIGN.md, "Outcomes"). `record`
 * is the record the attempt started from; the caller writes the result conditionally on its version.
 */
export function applyOutcome(record: PaymentRecord, outcome: Outcome, ctx: OutcomeContext): Decision {
  const { now, settings } = ctx;
  const attempts = record.attempts + 1;
  const base = { ...settledBase(record, now), attempts };
  const note = (event: string, detail?: string) => withHistory(record, now, event, detail);

  switch (outcome.type) {
    case 'posted': {
      const body = capBody(outcome.body);
      const result = { httpStatus: outcome.httpStatus, body, ...(outcome.note ? { note: capText(outcome.note) } : {}) };
      const { error: _e, unconfirmed: _u, ...clean } = base;
      return { record: { ...clean, status: 'posted', failures: 0, result, history: note('posted', `HTTP ${outcome.httpStatus}`) } };
    }
    case 'rate_limited': {
      // A 429 says nothing about the payment: it neither spends the budget nor counts as a failure.
      const delay = retryDelayMs({ failures: 0, statedWaitMs: outcome.waitMs }, ctx.random, settings.backoff);
      const wakeAt = now + delay;
      return {
        record: {
          ...scheduled({ ...record, attempts }, now, wakeAt, ctx.fence()),
          status: 'retrying',
          error: recordError('rate_limited', outcome),
          history: note('rate_limited', `retry in ${Math.ceil(delay / 1000)} s`),
        },
        wakeAt,
      };
    }
    case 'retryable':
      return retryLater(record, attempts, outcome, ctx, 'retryable');
    case 'ambiguous': {
      // A resent payment only sets a state (Cambio): sending it again is harmless, nothing to confirm.
      if (ctx.policy === 'resend') return retryLater(record, attempts, outcome, ctx, 'ambiguous');
      const unconfirmed = unconfirmedAfter(record, now);
      if (ctx.policy === 'reconcile') {
        // The worker that reads back may run on a clock up to the stated skew ahead (decide's readableFrom).
        const wakeAt = now + settings.reconcileDelayMs + settings.clockSkewMs;
        return {
          record: {
            ...scheduled({ ...record, attempts, unconfirmed }, now, wakeAt, ctx.fence()),
            status: 'reconciling',
            error: recordError('ambiguous', outcome),
            history: note('ambiguous', `${outcome.message}; reconciling before any new send`),
          },
          wakeAt,
        };
      }
      return { record: { ...parkedUnknown({ ...record, unconfirmed }, now, capText(outcome.message), attempts), error: recordError('ambiguous', outcome) } };
    }
    case 'rejected':
      return {
        record: {
          ...base,
          status: 'failed',
          error: recordError('rejected', outcome),
          history: note('rejected', outcome.code ? `${outcome.code}: ${outcome.message}` : outcome.message),
        },
      };
    case 'auth':
      return {
        record: {
          ...base,
          status: 'held',
          nextAttemptAt: now,
          error: recordError(outcome.config ? 'config' : 'auth', outcome),
          history: note('held', `${outcome.config ? 'configuration' : 'credentials or scope'}: ${outcome.message}`),
        },
      };
  }
}

function retryLater(
  record: PaymentRecord,
  attempts: number,
  outcome: Extract<Outcome, { type: 'retryable' | 'ambiguous' }>,
  ctx: OutcomeContext,
  kind: 'retryable' | 'ambiguous',
): Decision {
  const { now, settings } = ctx;
  const failures = record.failures + 1;
  if (budgetSpent(record, ctx)) return { record: heldForBudget(record, attempts, failures, ctx, capText(outcome.message)) };
  const waitMs = 'waitMs' in outcome ? outcome.waitMs : undefined;
  const delay = retryDelayMs({ failures, statedWaitMs: waitMs }, ctx.random, settings.backoff);
  const wakeAt = now + delay;
  return {
    record: {
      ...scheduled({ ...record, attempts, failures }, now, wakeAt, ctx.fence()),
      status: 'retrying',
      error: recordError(kind, outcome),
      history: withHistory(record, now, kind, `${outcome.message}; try ${failures + 1} in ${Math.ceil(delay / 1000)} s`),
    },
    wakeAt,
  };
}

/** A reconciliation that could not tell (the read failed): asked again with backoff, then `unknown` once the budget is spent. */
export function reconcileLater(record: PaymentRecord, message: string, ctx: OutcomeContext): Decision {
  const { now } = ctx;
  const failures = record.failures + 1;
  if (budgetSpent(record, ctx)) {
    return { record: parkedUnknown({ ...record, failures }, now, `reconciliation kept failing until ${budgetText(record, ctx)}: ${capText(message)}`) };
  }
  const wakeAt = now + retryDelayMs({ failures }, ctx.random, ctx.settings.backoff);
  return {
    record: {
      ...scheduled({ ...record, failures }, now, wakeAt, ctx.fence()),
      status: 'reconciling',
      history: withHistory(record, now, 'reconcile_inconclusive', message),
    },
    wakeAt,
  };
}

/** The schedule shown on the status route and by `paybridge show` (issue 10). */
export function scheduleOf(record: PaymentRecord, settings: EngineSettings, now: number) {
  const budgetEndsAt = record.budgetFrom + budgetFor(settings, record.system);
  return {
    ...(record.nextAttemptAt !== undefined ? { nextAttemptAt: new Date(record.nextAttemptAt).toISOString() } : {}),
    tries: record.attempts,
    failuresInARow: record.failures,
    budgetEndsAt: new Date(budgetEndsAt).toISOString(),
    budgetLeftSeconds: Math.max(0, Math.round((budgetEndsAt - now) / 1000)),
  };
}

/** What a finished revision leaves behind when the payment is sent again. */
function revisionSummary(record: PaymentRecord, now: number, reason: string): RevisionSummary {
  return {
    revision: record.revision ?? 1,
    status: record.status,
    payloadHash: record.payloadHash,
    attempts: record.attempts,
    ...(record.error ? { error: record.error } : {}),
    endedAt: new Date(now).toISOString(),
    reason,
  };
}

/**
 * The record started afresh as a new revision (issue 10's way back): the earlier one is summarised,
 * the budget and failure count start over, and the progress of the earlier revision is dropped.
 */
export function newRevision(existing: PaymentRecord, request: Record<string, unknown>, now: number, reason: string, event: string, checkpoints: Record<string, unknown> = {}): PaymentRecord {
  const { error: _e, result: _r, reconcileResends: _c, requestTrimmed: _t, ...rest } = settledBase(existing, now);
  return {
    ...rest,
    status: 'retrying',
    revision: (existing.revision ?? 1) + 1,
    request,
    // The same request sent again (an operator's repost) keeps the hash intake made: the hash is keyed
    // (LOG_HASH_KEY), and the operator's command may run without the stack's key. Not when personal data
    // was dropped from it after the send: what is sent now is not what the hash stands for.
    payloadHash: request === existing.request && !existing.requestTrimmed ? existing.payloadHash : payloadHash(request),
    attempts: 0,
    failures: 0,
    budgetFrom: now,
    // What the downstream holds of the earlier revision (a Kontantanalys object, a BRP order) is the
    // caller's to keep (shared/core/decide.ts decides): dropped, a send would make it a second time.
    checkpoints,
    revisions: [...(existing.revisions ?? []), revisionSummary(existing, now, reason)].slice(-10),
    history: withHistory(existing, now, event, reason),
  };
}

