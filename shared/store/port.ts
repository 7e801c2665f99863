import type { PaymentRecord } from '../core/types.js';

export type ClaimResult = { claimed: true } | { claimed: false; existing: PaymentRecord };

/** The record store (DESIGN.md, "The record"). Every write is conditional: the store does the locking. */
export interface RecordStore {
  /** One conditional write: creates the record unless the key exists; otherwise returns what is there. */
  claim(record: PaymentRecord): Promise<ClaimResult>;
  /** Strongly consistent read. */
  get(pk: string): Promise<PaymentRecord | undefined>;
  /** Replaces the record if its version is still `expectedVersion`; false when someone else wrote first. */
  replace(record: PaymentRecord, expectedVersion: number): Promise<boolean>;
  /** Records in a shard of the sparse index (`due` by default) at or before `before`, oldest first. */
  due(before: number, limit: number, shard?: 'due' | 'held' | 'unknown'): Promise<{ pk: string; at: number }[]>;
  /** Every record whose key starts with `pkPrefix` (a scheduled job's full pass; not for request paths). */
  scan(pkPrefix: string): Promise<PaymentRecord[]>;
}

/** A send slot granted by a system's shared rate limiter. `gen` changes when the schedule is reset. */
export interface Slot {
  at: number;
  gen: number;
}

/**
 * A rate limiter shared by every worker of one system (DESIGN.md: "A 429 seen by one worker slows
 * every worker for that system"). Slots are handed out at the system's rate; a 429 pauses the schedule.
 */
export interface RateLimiter {
  reserve(system: string, perSecond: number, now: number): Promise<Slot>;
  /** Whether a slot reserved earlier still belongs to the current schedule. */
  isCurrent(system: string, gen: number): Promise<boolean>;
  pause(system: string, until: number): Promise<void>;
}
