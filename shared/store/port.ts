import type { LimiterState } from '../core/pacing.js';
import type { PaymentRecord, Status } from '../core/types.js';
import type { DueKind } from './indexes.js';

export type ClaimResult = { claimed: true } | { claimed: false; existing: PaymentRecord };

export interface ListPage {
  records: PaymentRecord[];
  /** Pass back to get the next page; absent on the last page. */
  cursor?: string;
}

/** The record store (DESIGN.md, "The record"). Every write is conditional: the store does the locking. */
export interface RecordStore {
  /** One conditional write: creates the record unless the key exists; otherwise returns what is there. */
  claim(record: PaymentRecord): Promise<ClaimResult>;
  /** Strongly consistent read. */
  get(pk: string): Promise<PaymentRecord | undefined>;
  /** Strongly consistent reads of several records in as few requests as the store allows. */
  getMany(pks: readonly string[]): Promise<Map<string, PaymentRecord>>;
  /** Replaces the record if its version is still `expectedVersion`; false when someone else wrote first. */
  replace(record: PaymentRecord, expectedVersion: number): Promise<boolean>;
  /** Records of `system` in the due index's `kind` shards due in [`after`, `before`], oldest first, at most `limit`. */
  due(system: string, before: number, limit: number, kind?: DueKind, after?: number): Promise<{ pk: string; at: number }[]>;
  /** One page of `system`'s records in `status`, newest first, optionally created at or after `since`. */
  list(system: string, status: Status, opts: { limit: number; cursor?: string; since?: number }): Promise<ListPage>;
}

/** The shared rate limiter's item per system, read and written with optimistic concurrency on `ver`. */
export interface LimiterStore {
  read(system: string): Promise<LimiterState>;
  /** Writes `state` (with `ver` = expectedVer + 1) if the stored version is still `expectedVer`. */
  write(system: string, state: LimiterState, expectedVer: number): Promise<boolean>;
}

/** Fences of queued attempts (see `Fence` in core/types.ts), one item per fence id. */
export interface FenceStore {
  /**
   * Consumes each `n` of fence `id`, recording its attempt's deadline, in one conditional write when all
   * are free. Returns the `n`s this call consumed; the others were consumed (or revoked) before.
   */
  consume(id: string, entries: readonly { n: number; deadline: number }[]): Promise<Set<number>>;
  /** The consumed `n`s of fence `id` and their deadlines. */
  inspect(id: string): Promise<Map<number, number>>;
}

/**
 * The table of a function whose role grants none (the OpenAPI route): every call says so, where a DynamoDB
 * client would have been bundled only to be refused by IAM.
 */
class NoTable implements RecordStore, LimiterStore, FenceStore {
  private refuse(): Promise<never> {
    return Promise.reject(new Error('this function has no record table: its role grants none (shared/aws/stack.ts)'));
  }
  claim = () => this.refuse();
  get = () => this.refuse();
  getMany = () => this.refuse();
  replace = () => this.refuse();
  due = () => this.refuse();
  list = () => this.refuse();
  read = () => this.refuse();
  write = () => this.refuse();
  consume = () => this.refuse();
  inspect = () => this.refuse();
}

const noTable = new NoTable();
export const NO_TABLE: { store: RecordStore; limiter: LimiterStore; fences: FenceStore } = { store: noTable, limiter: noTable, fences: noTable };
