import { retryDelayMs, type BackoffSettings } from './retry-policy.js';
import { HISTORY_LIMIT, type AmbiguityPolicy, type HistoryEntry, type Outcome, type PaymentRecord, type RecordError } from './types.js';

export interface EngineSettings {
  /** How long one attempt may be in flight before it counts as ambiguous. Longer than any downstream timeout. */
  leaseMs: number;
  /** Failed attempts (429s excluded) before a payment is given up as `failed`. */
  maxFailures: number;
  /** Age after which a payment still not posted is given up. */
  maxAgeMs: number;
  ttlDays: number;
  /** Wait before reading a downstream back after an ambiguous outcome, so the read is consistent. */
  reconcileDelayMs: number;
  /** A reserved send slot this close is waited for in-process; a later one goes through the queue. */
  inlineWaitMs: number;
  /** The sweep re-enqueues records overdue by more than this. */
  sweepGraceMs: number;
  /**
   * The time one send may take (connect + headers + body, a token fetch included). An invocation
   * with less time left defers to the queue instead of sending: a Lambda stopped mid-send leaves an
   * ambiguous outcome, and API Gateway stops waiting after 29 s.
   */
  sendBudgetMs: number;
  backoff: BackoffSettings;
}

export const DEFAULT_SETTINGS: EngineSettings = {
  leaseMs: 60_000,
  maxFailures: 8,
  maxAgeMs: 72 * 3_600_000,
  ttlDays: 400,
  reconcileDelayMs: 5_000,
  inlineWaitMs: 1_000,
  sweepGraceMs: 120_000,
  sendBudgetMs: 20_000,
  backoff: { baseMs: 1_000, capMs: 15 * 60_000 },
};

export function withHistory(record: PaymentRecord, at: number, event: string, detail?: string): HistoryEntry[] {
  const entry: HistoryEntry = detail === undefined ? { at: new Date(at).toISOString(), event } : { at: new Date(at).toISOString(), event, detail };
  return [...record.history, entry].slice(-HISTORY_LIMIT);
}

/** The record without its lease and schedule: the base of every settled state. */
export function settledBase(record: PaymentRecord, now: number): PaymentRecord {
  const { leaseOwner: _o, leaseUntil: _u, nextAttemptAt: _n, dueShard: _d, slot: _s, ...rest } = record;
  return { ...rest, updatedAt: new Date(now).toISOString() };
}

/**
 * The record under `owner`'s lease until `now + leaseMs`. Until the lease is released its expiry is
 * also its wake-up time, so an attempt that dies is found by the sweep and handled as ambiguous.
 */
export function leasedBy(record: PaymentRecord, owner: string, now: number, leaseMs: number): PaymentRecord {
  const leaseUntil = now + leaseMs;
  return { ...record, leaseOwner: owner, leaseUntil, nextAttemptAt: leaseUntil, dueShard: 'due', updatedAt: new Date(now).toISOString() };
}

/** An active record due at `at`: visible to the sweep through the sparse index. */
export function scheduled(record: PaymentRecord, now: number, at: number): PaymentRecord {
  return { ...settledBase(record, now), status: record.status, nextAttemptAt: at, dueShard: 'due' };
}

/** What a failed attempt leaves on the record: the kind, the downstream's message, status and code. */
function recordError(kind: RecordError['kind'], outcome: Exclude<Outcome, { type: 'posted' }>): RecordError {
  return {
    kind,
    message: outcome.message,
    ...(outcome.httpStatus ? { httpStatus: outcome.httpStatus } : {}),
    ...('code' in outcome && outcome.code ? { code: outcome.code } : {}),
  };
}

export interface Decision {
  record: PaymentRecord;
  /** When set, a queue message should wake the worker at this time. */
  wakeAt?: number;
  /** When set, the whole system should be paused until this time (shared throttle). */
  pauseUntil?: number;
}

function budgetExhausted(record: PaymentRecord, failures: number, now: number, s: EngineSettings): string | undefined {
  if (failures >= s.maxFailures) return `gave up after ${failures} failed attempts`;
  const age = now - Date.parse(record.createdAt);
  if (age >= s.maxAgeMs) return `gave up after ${Math.round(age / 60_000)} minutes`;
  return undefined;
}

/**
 * The next state of a record after one attempt, as a pure function (DESIGN.md, "Outcomes"). `record`
 * is the leased record the attempt started from; the caller writes the result conditionally on its
 * version.
 */
export function applyOutcome(
  record: PaymentRecord,
  outcome: Outcome,
  ctx: { now: number; policy: AmbiguityPolicy; settings: EngineSettings; random: () => number },
): Decision {
  const { now, settings } = ctx;
  const attempts = record.attempts + 1;
  const base = { ...settledBase(record, now), attempts };
  const note = (event: string, detail?: string) => withHistory(record, now, event, detail);

  switch (outcome.type) {
    case 'posted': {
      const result = { httpStatus: outcome.httpStatus, body: outcome.body, ...(outcome.note ? { note: outcome.note } : {}) };
      const { error: _e, ...clean } = base;
      return { record: { ...clean, status: 'posted', result, history: note('posted', `HTTP ${outcome.httpStatus}`) } };
    }
    case 'rate_limited': {
      const delay = retryDelayMs({ failures: record.failures, statedWaitMs: outcome.waitMs }, ctx.random, settings.backoff);
      const wakeAt = now + delay;
      const giveUp = now - Date.parse(record.createdAt) >= settings.maxAgeMs;
      if (giveUp) {
        return {
          record: { ...base, status: 'failed', error: { kind: 'budget', message: `rate limited until past the maximum age: ${outcome.message}` }, history: note('failed', 'rate limited past the maximum age') },
        };
      }
      const next: PaymentRecord = {
        ...scheduled({ ...record, attempts }, now, wakeAt),
        status: 'retrying',
        error: recordError('rate_limited', outcome),
        history: note('rate_limited', `retry in ${Math.ceil(delay / 1000)} s`),
      };
      return { record: next, wakeAt, pauseUntil: now + (outcome.waitMs ?? delay) };
    }
    case 'retryable':
      return retryOrFail(record, attempts, outcome, ctx, 'retryable');
    case 'ambiguous': {
      if (ctx.policy === 'resend') return retryOrFail(record, attempts, outcome, ctx, 'ambiguous');
      if (ctx.policy === 'reconcile') {
        const wakeAt = now + settings.reconcileDelayMs;
        return {
          record: {
            ...scheduled({ ...record, attempts }, now, wakeAt),
            status: 'reconciling',
            error: recordError('ambiguous', outcome),
            history: note('ambiguous', `${outcome.message}; reconciling before any new send`),
          },
          wakeAt,
        };
      }
      return {
        record: {
          ...base,
          dueShard: 'unknown',
          nextAttemptAt: now,
          status: 'unknown',
          error: recordError('ambiguous', outcome),
          history: note('unknown', `${outcome.message}; parked for an operator, never re-posted automatically`),
        },
      };
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
          dueShard: 'held',
          nextAttemptAt: now,
          status: 'held',
          error: recordError('auth', outcome),
          history: note('held', `credentials or scope: ${outcome.message}`),
        },
      };
  }
}

function retryOrFail(
  record: PaymentRecord,
  attempts: number,
  outcome: Extract<Outcome, { type: 'retryable' | 'ambiguous' }>,
  ctx: { now: number; settings: EngineSettings; random: () => number },
  kind: 'retryable' | 'ambiguous',
): Decision {
  const { now, settings } = ctx;
  const failures = record.failures + 1;
  const error = recordError(kind, outcome);
  const exhausted = budgetExhausted(record, failures, now, settings);
  if (exhausted) {
    return {
      record: {
        ...settledBase(record, now),
        attempts,
        failures,
        status: 'failed',
        error: { ...error, message: `${exhausted}; last: ${outcome.message}` },
        history: withHistory(record, now, 'failed', `${exhausted}; last: ${outcome.message}`),
      },
    };
  }
  const waitMs = 'waitMs' in outcome ? outcome.waitMs : undefined;
  const delay = retryDelayMs({ failures, statedWaitMs: waitMs }, ctx.random, settings.backoff);
  const wakeAt = now + delay;
  return {
    record: {
      ...scheduled({ ...record, attempts, failures }, now, wakeAt),
      status: 'retrying',
      error,
      history: withHistory(record, now, kind, `${outcome.message}; retry ${failures} in ${Math.ceil(delay / 1000)} s`),
    },
    wakeAt,
  };
}
