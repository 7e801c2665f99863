/** The public statuses of a payment record (DESIGN.md, "Public interface"). */
export const STATUSES = ['posted', 'retrying', 'reconciling', 'unknown', 'held', 'failed'] as const;
export type Status = (typeof STATUSES)[number];

/** Statuses the engine still works on: the retry worker and the sweep pick these up. */
export const ACTIVE_STATUSES: readonly Status[] = ['retrying', 'reconciling'];

/** What one downstream call did, decided by a system's pure error mapping. */
export type Outcome =
  | { type: 'posted'; httpStatus: number; body: unknown; note?: string }
  | { type: 'rate_limited'; httpStatus?: number; waitMs?: number; message: string }
  | { type: 'retryable'; httpStatus?: number; waitMs?: number; message: string }
  | { type: 'ambiguous'; httpStatus?: number; message: string }
  | { type: 'rejected'; httpStatus?: number; code?: string; message: string; body?: unknown }
  | { type: 'auth'; httpStatus?: number; message: string };

/** What the engine does with an ambiguous outcome (DESIGN.md, "Outcomes"). */
export type AmbiguityPolicy = 'resend' | 'reconcile' | 'park';

export interface HistoryEntry {
  at: string;
  event: string;
  detail?: string;
}

export interface RecordError {
  kind: Outcome['type'] | 'budget' | 'config';
  message: string;
  httpStatus?: number;
  code?: string;
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
  /** SHA-256 of the canonical JSON of the normalised request. */
  payloadHash: string;
  /** The normalised request, as the system module will send it. May hold personal data: never logged. */
  request: Record<string, unknown>;
  /** Downstream calls made. */
  attempts: number;
  /** Failed attempts that count towards the retry budget (429s never do). */
  failures: number;
  leaseOwner?: string;
  /** Epoch ms; present while an attempt is in flight. An expired lease is an ambiguous outcome. */
  leaseUntil?: number;
  /** Epoch ms; when the engine should look at the record again (retry, reconcile, or lease expiry). */
  nextAttemptAt?: number;
  /**
   * Sparse GSI partition: `due` while the engine still works on the record (the sweep re-enqueues
   * overdue ones); `held` and `unknown` while an operator must act, so they can be listed and
   * alarmed on (`nextAttemptAt` is then the time they got there). Absent once settled.
   */
  dueShard?: 'due' | 'held' | 'unknown';
  /** A send slot reserved with the system's shared rate limiter. */
  slot?: { at: number; gen: number };
  /** Per-step progress for multi-step systems (BRP order id, Kontantanalys remote id, ...). */
  checkpoints: Record<string, unknown>;
  result?: { httpStatus: number; body: unknown; note?: string };
  error?: RecordError;
  history: HistoryEntry[];
  correlationId: string;
  createdAt: string;
  updatedAt: string;
  /** Epoch seconds: DynamoDB TTL. */
  ttl: number;
}

export const HISTORY_LIMIT = 50;

export function recordPk(system: string, tenant: string, key: string): string {
  return `${system}#${tenant}#${key}`;
}
