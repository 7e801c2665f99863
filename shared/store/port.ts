import type { LimiterState } from '../core/pacing.js';
import type { PaymentRecord, Status } from '../core/types.js';
import type { BrowseFilter, BrowsePage } from './browse.js';
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
  /**
   * One page of payments of any filter, newest first, through the listing index: at most two Queries
   * and one BatchGetItem (shared/store/browse.ts). Stores without the index (test doubles) leave it out.
   */
  browse?(opts: { filter?: BrowseFilter; cursor?: string; limit: number }): Promise<BrowsePage>;
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
 * What a webhook delivery chose when its `webhook-id` was first seen (issue 12): the parts of the
 * request the signature does not cover but that decide what it does, and the body it does cover. All
 * but the route are keyed hashes (shared/http/webhooks.ts): the memory holds no value it binds.
 */
export interface DeliveryBinding {
  /** Method and resource template, e.g. `POST /v1/nif/membership/payments`. */
  route: string;
  /** The route's path parameters (Kontantanalys' resource and externalId). */
  path: string;
  /** Headers that choose the target; null when absent. */
  clubId: string | null;
  idempotencyKey: string | null;
  patient: string | null;
  body: string;
  /** The query string's parameters as the route reads them; absent when there are none (and on ids remembered before it was bound). */
  query?: string;
}

/** The first answer to a delivery, as the route gave it. */
export interface StoredAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export type DeliveryClaim =
  /** First sight of the id (or its memory lapsed, or the first attempt died or gave a passing answer): handle it. */
  | { claimed: true }
  /** Seen: the binding it was first seen with, and its answer once the route gave one. */
  | { claimed: false; binding: DeliveryBinding; answer?: StoredAnswer; leaseUntil: number; receivedAt: string };

export interface DeliveryClaimRequest {
  sender: string;
  id: string;
  binding: DeliveryBinding;
  /** The request handling it (its id), so only that one stores the answer. */
  owner: string;
  /** Epoch ms after which the handling counts as dead and an identical delivery may take it over. */
  leaseUntil: number;
  /** Epoch seconds: how long the id is remembered (the table's TTL). */
  expiresAt: number;
}

/** Webhook ids already received, one item per sender and id (`webhook#<sender>#<id>`), in the records table. */
export interface WebhookStore {
  /**
   * One conditional write: claims the id unless it is remembered. Takes over, still in one write, an
   * id whose memory expired, or whose identical delivery holds no answer and no live lease (its
   * handler died, or its answer was one to send again). Otherwise returns what is remembered.
   */
  claim(request: DeliveryClaimRequest, now: number): Promise<DeliveryClaim>;
  /** Stores the first answer, if `owner` still holds the delivery. */
  answer(sender: string, id: string, owner: string, answer: StoredAnswer): Promise<boolean>;
  /** Lets the next identical delivery be handled afresh (the answer was a passing one: 5xx, 409, 429), if `owner` still holds it. */
  release(sender: string, id: string, owner: string): Promise<boolean>;
}

/**
 * The table of a function whose role grants none (the OpenAPI route): every call says so, where a DynamoDB
 * client would have been bundled only to be refused by IAM.
 */
class NoTable implements RecordStore, LimiterStore, FenceStore, WebhookStore {
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
  answer = () => this.refuse();
  release = () => this.refuse();
}

const noTable = new NoTable();
export const NO_TABLE: { store: RecordStore; limiter: LimiterStore; fences: FenceStore; webhooks: WebhookStore } = { store: noTable, limiter: noTable, fences: noTable, webhooks: noTable };
