/** The public statuses of a payment record (DESIGN.md, "Public interface"). */
export const STATUSES = ['posted', 'retrying', 'reconciling', 'unknown', 'held', 'failed'] as const;
export type Status = (typeof STATUSES)[number];

/** Statuses the engine still works on: the retry workers and the sweep pick these up. */
export const ACTIVE_STATUSES: readonly Status[] = ['retrying', 'reconciling'];

/** What a downstream said about its rate limit (Retry-After aside), read from `RateLimit-*` / `X-RateLimit-*`. */
export interface RateInfo {
  /** Calls allowed per `windowMs`. */
  limit?: number;
  windowMs?: number;
  remaining?: number;
  /** Milliseconds until the window resets. */
  resetMs?: number;
}

/** What one downstream call did, decided by a system's pure error mapping. */
export type Outcome =
  | { type: 'posted'; httpStatus: number; body: unknown; note?: string; rate?: RateInfo }
  | { type: 'rate_limited'; httpStatus?: number; waitMs?: number; message: string; rate?: RateInfo }
  /** `late`: not sent at all, its send slot passed before it reached the socket (a new slot is taken, nothing counted). */
  | { type: 'retryable'; httpStatus?: number; waitMs?: number; message: string; late?: true }
  | { type: 'ambiguous'; httpStatus?: number; message: string }
  | { type: 'rejected'; httpStatus?: number; code?: string; message: string; body?: unknown }
  | { type: 'auth'; httpStatus?: number; message: string; config?: boolean };

/** What the engine does with an ambiguous outcome (DESIGN.md, "Outcomes"). */
export type AmbiguityPolicy = 'resend' | 'reconcile' | 'park';

export interface HistoryEntry {
  at: string;
  event: string;
  detail?: string;
}

export interface RecordError {
  kind: Outcome['type'] | 'budget' | 'config' | 'resolved';
  message: string;
  httpStatus?: number;
  code?: string;
}

/**
 * The right to make one queued attempt on a record. The retry message carries it; whoever consumes it
 * first (one conditional write on `fence#<id>`) may send, everyone else drops the message. A consumed
 * fence therefore also marks "a request may have reached the downstream".
 */
export interface Fence {
  id: string;
  n: number;
}

/** A send that may have reached the downstream without a confirmed answer. */
export interface Unconfirmed {
  /** Epoch ms of the first such send still unconfirmed. */
  since: number;
  /** Epoch ms of the latest ambiguous answer: nothing reads the downstream back before this plus the reconcile delay. */
  at: number;
  /** The revision that was sent. */
  revision: number;
}

/** A payment's earlier revision, kept when it is sent again with corrected data or reposted. */
export interface RevisionSummary {
  revision: number;
  status: Status;
  payloadHash: string;
  attempts: number;
  error?: RecordError;
  endedAt: string;
  /** Why a new revision started. */
  reason: string;
}

export interface PaymentRecord {
  /** `<system>#<tenant>#<key>` */
  pk: string;
  system: string;
  tenant: string;
  /** The idempotency key as the route received it. */
  key: string;
  status: Status;
  /** Incremented on every write; every write is conditional on the version it read. */
  version: number;
  /** 1 on the first claim; +1 each time a payment that reached nothing is sent again (repost, corrected data). */
  revision: number;
  /** HMAC-SHA256 (LOG_HASH_KEY) of the canonical JSON of the normalised request as received (shared/core/canonical.ts). */
  payloadHash: string;
  /** The normalised request, as the system module will send it. May hold personal data: never logged. */
  request: Record<string, unknown>;
  /** Personal data the send needed was dropped from `request` after it (the module's afterSend): it no longer matches `payloadHash`. */
  requestTrimmed?: boolean;
  /** Who submitted it (the caller's name); the status route shows the record to that caller only. */
  caller?: string;
  /** Downstream attempts made. */
  attempts: number;
  /** Failed attempts in a row (429s never count): drives the backoff. */
  failures: number;
  /** Epoch ms the retry budget runs from (the claim, or the start of the current revision). */
  budgetFrom: number;
  /** An attempt made in-process (the HTTP route's first try): who holds it and until when. */
  leaseOwner?: string;
  leaseUntil?: number;
  /** Set while a request of the leased attempt may be reaching the downstream. */
  sending?: boolean;
  /** A queued attempt: the message that consumes this fence may attempt the record once. */
  fence?: Fence;
  /** Epoch ms; when the engine should look at the record again (retry, reconcile, lease expiry). */
  nextAttemptAt?: number;
  /**
   * Sparse due index partition: `<system>#due#<shard>` while the engine works on the record (the sweep
   * finds overdue ones), `<system>#held#<shard>` / `<system>#unknown#<shard>` while an operator must act
   * (`nextAttemptAt` is then the time they got there). Absent once settled.
   */
  dueShard?: string;
  /** Listing index partition `<system>#<status>#<shard>`, sorted by `createdMs`. */
  statusShard?: string;
  /** Listing index partition (`pay#posted` or `pay#open`), sorted by `createdMs` (shared/store/indexes.ts). */
  listPart?: string;
  createdMs?: number;
  /** Per-step progress for multi-step systems (BRP order id, Kontantanalys remote id, ...). */
  checkpoints: Record<string, unknown>;
  /**
   * What the downstream may hold that nobody has confirmed (issue 19): set by an ambiguous answer or an
   * attempt that did not finish, kept through every status change, operator action and revision, and
   * cleared only by a reconcile's answer or an operator's resolve. While set, nothing sends the payment
   * again without reading the downstream first (shared/core/decide.ts).
   */
  unconfirmed?: Unconfirmed;
  /** Reconciliations that found nothing and sent once more, in this revision. */
  reconcileResends?: number;
  result?: { httpStatus: number; body: unknown; note?: string };
  error?: RecordError;
  history: HistoryEntry[];
  revisions?: RevisionSummary[];
  correlationId: string;
  createdAt: string;
  updatedAt: string;
  /** Epoch seconds: DynamoDB TTL. */
  ttl: number;
}

/**
 * What every view of a record starts with (the status route, `paybridge payments list --json`): its ids,
 * status and timing, and when the engine looks at it next while it is active. No personal data.
 */
export function recordHeadline(record: PaymentRecord) {
  return {
    system: record.system,
    key: record.key,
    status: record.status,
    revision: record.revision ?? 1,
    attempts: record.attempts,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    ...(record.nextAttemptAt !== undefined && ACTIVE_STATUSES.includes(record.status) ? { nextAttemptAt: new Date(record.nextAttemptAt).toISOString() } : {}),
  };
}

export const HISTORY_LIMIT = 50;

export function recordPk(system: string, tenant: string, key: string): string {
  return `${system}#${tenant}#${key}`;
}

export function systemOfPk(pk: string): string {
  return pk.slice(0, pk.indexOf('#'));
}
