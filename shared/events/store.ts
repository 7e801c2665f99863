import { ConditionalCheckFailedException, DescribeTableCommand, UpdateTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, DeleteCommand, GetCommand, PutCommand, QueryCommand, ScanCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { documentClient } from '../store/client.js';
import { TABLE_KEYS } from '../store/table.js';
import { eventId, NO_CALLER, PENDING_SHARDS, pendingKey, type EventType, type OutboxRecord, type PaymentEvent } from './model.js';

/** A caller's webhook endpoint (`endpoint#<id>`). */
export interface Endpoint {
  id: string;
  caller: string;
  url: string;
  /** Empty: every event type. */
  eventTypes: EventType[];
  description?: string;
  /** `whsec_...`: every one not past its `until` signs (rotation keeps the old one 24 h). */
  secrets: { secret: string; until?: number }[];
  disabled?: { at: string; reason: string };
  /** Epoch ms of the first failure of the current run of failures (cleared by a success). */
  failingSince?: number;
  /** Epoch ms before which nothing is sent to it (429, 502, 504, Retry-After). */
  pausedUntil?: number;
  createdAt: string;
  createdMs: number;
  updatedAt: string;
  /**
   * Counts the endpoint's writes (absent on one made before it was kept). A caller's change is a
   * read-modify-write of the whole item, so it is conditional on the version it read: a PATCH that read
   * before a rotation or before the deliverer disabled the endpoint must not write back what it read.
   */
  version?: number;
}

/** One attempt to deliver, kept for the caller to see. */
export interface Attempt {
  at: string;
  /** HTTP status, 0 when no answer came (refused, timed out). */
  status: number;
  ms: number;
  /** The first bytes of the answer, or what went wrong. */
  answer: string;
}

export type DeliveryStatus = 'pending' | 'delivered' | 'exhausted' | 'cancelled';

/** An event on its way to one endpoint (`delivery#<endpoint>#<event>`): made once, whoever hands it on. */
export interface Delivery {
  endpointId: string;
  eventId: string;
  caller: string;
  event: PaymentEvent;
  status: DeliveryStatus;
  /** Tries made (the schedule's position). */
  tries: number;
  nextAttemptAt: number;
  attempts: Attempt[];
  /** The record's event before this one (per-payment order: this waits while that is pending to the same endpoint). */
  previousId?: string;
  createdMs: number;
  updatedAt: string;
}

/** What the console's timeline shows of one settlement event of a payment: no secret, no answer's bytes. */
export interface PaymentEventSummary {
  id: string;
  type: EventType;
  sequence: number;
  time: string;
  deliveries: { endpointId: string; status: DeliveryStatus; tries: number; lastAttempt?: { at: string; httpStatus: number; ms: number } }[];
}

export interface StoredEvent {
  event: PaymentEvent;
  caller: string;
  createdMs: number;
  /** The record's event before this one. */
  previousId?: string;
}

/** An endpoint item's key begins so (the local stack counts writes to such keys at its dynalite). */
export const ENDPOINT_PK_PREFIX = 'endpoint#';
const endpointPk = (id: string) => `${ENDPOINT_PK_PREFIX}${id}`;
const eventPk = (id: string) => `event#${id}`;
export const deliveryPk = (endpointId: string, eventId: string) => `delivery#${endpointId}#${eventId}`;
const endpointsKey = (caller: string) => `endpoints#${caller}`;
const eventsKey = (caller: string) => `events#${caller}`;
const dueKey = (endpointId: string) => `due#${endpointId}`;

/** Events and deliveries are kept 30 days: long past the three-day schedule, for `events list` and recover. */
export const EVENT_TTL_SECONDS = 30 * 86_400;
/** Attempts kept per delivery (the schedule makes at most ten; a resend adds more). */
const ATTEMPTS_KEPT = 20;

function isConditionFailure(err: unknown): boolean {
  return err instanceof ConditionalCheckFailedException || (err as Error | undefined)?.name === 'ConditionalCheckFailedException';
}

function strip<T>(item: Record<string, unknown> | undefined): T | undefined {
  if (!item) return undefined;
  const { pk: _p, eventsKey: _k, eventAt: _a, ttl: _t, ...rest } = item;
  return rest as T;
}

/** The events-out items of the records table (shared/store/table.ts, events-index). */
export class EventStore {
  readonly doc: DynamoDBDocumentClient;

  constructor(
    client: DynamoDBClient,
    readonly tableName: string,
    private readonly clock: () => number = Date.now,
    /**
     * Endpoint writes the database has answered, whoever sent them (the local stack's in-process dynalite
     * counts them: shared/local/dynamo-tap.ts countWrites). Without it, only this store's own writes move
     * endpointGeneration, and another process's are seen once a kept list is a second old.
     */
    private readonly endpointWritesSeen?: () => number,
  ) {
    this.doc = documentClient(client);
  }

  private ttl(): number {
    return Math.floor(this.clock() / 1000) + EVENT_TTL_SECONDS;
  }

  /** Keys of `partition` in events-index with range at most `before`, oldest first. */
  private async keys(partition: string, opts: { before?: number; after?: number; limit: number; newestFirst?: boolean }): Promise<{ pk: string; at: number }[]> {
    const out: { pk: string; at: number }[] = [];
    let start: Record<string, unknown> | undefined;
    // Bounded: `limit` keys, in pages of at most 100.
    for (let page = 0; page < 1000 && out.length < opts.limit; page++) {
      const range = opts.before !== undefined && opts.after !== undefined ? ' AND #r BETWEEN :a AND :b' : opts.before !== undefined ? ' AND #r <= :b' : opts.after !== undefined ? ' AND #r >= :a' : '';
      const res = await this.doc.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: TABLE_KEYS.eventsIndex,
          KeyConditionExpression: `#h = :h${range}`,
          ExpressionAttributeNames: { '#h': TABLE_KEYS.eventsIndexHash, ...(range ? { '#r': TABLE_KEYS.eventsIndexRange } : {}) },
          ExpressionAttributeValues: { ':h': partition, ...(opts.before !== undefined ? { ':b': opts.before } : {}), ...(opts.after !== undefined ? { ':a': opts.after } : {}) },
          ScanIndexForward: !opts.newestFirst,
          Limit: Math.min(100, opts.limit - out.length),
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      for (const i of res.Items ?? []) out.push({ pk: String(i.pk), at: Number(i[TABLE_KEYS.eventsIndexRange]) });
      start = res.LastEvaluatedKey;
      if (!start) break;
    }
    return out;
  }

  async getMany(pks: readonly string[]): Promise<Map<string, Record<string, unknown>>> {
    const found = new Map<string, Record<string, unknown>>();
    const unique = [...new Set(pks)];
    for (let i = 0; i < unique.length; i += 100) {
      let keys: Record<string, unknown>[] = unique.slice(i, i + 100).map((pk) => ({ pk }));
      for (let round = 0; round < 5 && keys.length > 0; round++) {
        const res = await this.doc.send(new BatchGetCommand({ RequestItems: { [this.tableName]: { Keys: keys, ConsistentRead: true } } }));
        for (const item of res.Responses?.[this.tableName] ?? []) found.set(String(item.pk), item);
        keys = (res.UnprocessedKeys?.[this.tableName]?.Keys ?? []) as Record<string, unknown>[];
      }
    }
    return found;
  }

  // ---- the outbox on the records ----

  /** Records whose event is not yet handed on, stamped at or before `before`. */
  async pending(before: number, limit = 100): Promise<OutboxRecord[]> {
    const keys = (await Promise.all(Array.from({ length: PENDING_SHARDS }, (_, s) => this.keys(pendingKey(s), { before, limit })))).flat();
    const records = await this.getMany(keys.map((k) => k.pk));
    return [...records.values()].filter((r) => r.eventsKey !== undefined && r.lastEvent !== undefined) as unknown as OutboxRecord[];
  }

  /**
   * The records of pending partition `partition` whose event was stamped at `at` (epoch ms): how AWS's
   * delivery function finds the record a bus message is about, as the message names no record key
   * (functions/event-delivery.ts). One Query of the index (rarely more than one key: one shard, one
   * millisecond), then the records themselves read consistently.
   */
  async pendingAt(partition: string, at: number, limit = 100): Promise<OutboxRecord[]> {
    const keys = await this.keys(partition, { after: at, before: at, limit });
    const records = await this.getMany(keys.map((k) => k.pk));
    return [...records.values()].filter((r) => r.eventsKey !== undefined && r.lastEvent !== undefined) as unknown as OutboxRecord[];
  }

  /**
   * Local stack at boot only: records whose event is pending, found by a Scan. dynalite writes an item and
   * its index entries as separate steps, so a process killed between them can leave a pending event the
   * index does not show (the same hole shared/local/reindex.ts closes for the due index). AWS never runs it.
   */
  async pendingByScan(): Promise<OutboxRecord[]> {
    const out: OutboxRecord[] = [];
    let start: Record<string, unknown> | undefined;
    for (let page = 0; page < 10_000; page++) {
      const res = await this.doc.send(
        new ScanCommand({
          TableName: this.tableName,
          FilterExpression: 'begins_with(#k, :p) AND attribute_exists(lastEvent)',
          ExpressionAttributeNames: { '#k': TABLE_KEYS.eventsIndexHash },
          ExpressionAttributeValues: { ':p': 'pending#' },
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      out.push(...((res.Items ?? []) as unknown as OutboxRecord[]));
      start = res.LastEvaluatedKey;
      if (!start) break;
    }
    return out;
  }

  /**
   * Clears the pending mark of event `id` in one conditional write, unless the record has moved on to
   * another event (that one stays pending). The version is left alone: the engine's next write must not
   * fail its condition for this. A write of the engine from a read older than this one puts the mark back
   * with the same id; the relay then finds the event handed on already, and clears it again.
   */
  async clearPending(pk: string, id: string): Promise<boolean> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk },
          // eventNew too: the stream's record of this write holds the whole item, and the pipe takes every
          // image carrying eventNew (shared/aws/stack.ts), so the bus would get the event again, without its mark.
          UpdateExpression: 'REMOVE #k, #a, pendingEvents, eventNew',
          ConditionExpression: 'lastEvent.#id = :id',
          ExpressionAttributeNames: { '#k': TABLE_KEYS.eventsIndexHash, '#a': TABLE_KEYS.eventsIndexRange, '#id': 'id' },
          ExpressionAttributeValues: { ':id': id },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  // ---- events ----

  /** Keeps the event once (the same id again is a no-op). True when this call stored it. */
  async putEvent(e: StoredEvent): Promise<boolean> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { pk: eventPk(e.event.id), ...e, [TABLE_KEYS.eventsIndexHash]: eventsKey(e.caller), [TABLE_KEYS.eventsIndexRange]: e.createdMs, ttl: this.ttl() },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  async getEvent(id: string): Promise<StoredEvent | undefined> {
    const res = await this.doc.send(new GetCommand({ TableName: this.tableName, Key: { pk: eventPk(id) }, ConsistentRead: true }));
    return strip<StoredEvent>(res.Item);
  }

  /** A caller's events, newest first, optionally since `since` (epoch ms). */
  async listEvents(caller: string, opts: { limit: number; since?: number; oldestFirst?: boolean }): Promise<StoredEvent[]> {
    const keys = await this.keys(eventsKey(caller), { limit: opts.limit, ...(opts.since !== undefined ? { after: opts.since } : {}), newestFirst: !opts.oldestFirst });
    const items = await this.getMany(keys.map((k) => k.pk));
    return keys.map((k) => strip<StoredEvent>(items.get(k.pk))).filter((e): e is StoredEvent => e !== undefined);
  }

  /**
   * A payment's settlement events and their deliveries, oldest first, for the console's timeline (issue 22):
   * ids only, never an endpoint item (its secrets) nor an answer's bytes. The ids are derived from the record
   * (key, revision, sequence: model.ts eventId), so the events are read by key, the last `limit` sequence
   * numbers over the last ten revisions; the caller's endpoint ids come from the index's keys alone.
   */
  async paymentEvents(record: OutboxRecord, limit = 50): Promise<PaymentEventSummary[]> {
    const last = record.lastEvent;
    if (!last) return [];
    const ids: string[] = [];
    for (let seq = Math.max(1, last.seq - limit + 1); seq <= last.seq; seq++) {
      for (let revision = Math.max(1, last.revision - 9); revision <= last.revision; revision++) ids.push(eventId(record.pk, revision, seq));
    }
    const caller = record.caller ?? NO_CALLER;
    const found = await this.getMany(ids.map(eventPk));
    const events = [...found.values()].map((i) => strip<StoredEvent>(i)).filter((e): e is StoredEvent => e !== undefined && e.caller === caller);
    events.sort((a, b) => (a.event.data.sequence ?? 0) - (b.event.data.sequence ?? 0));
    const endpointIds = caller === NO_CALLER ? [] : (await this.keys(endpointsKey(caller), { limit: 100 })).map((k) => k.pk.slice(endpointPk('').length));
    const deliveries = await this.getMany(events.flatMap((e) => endpointIds.map((ep) => deliveryPk(ep, e.event.id))));
    return events.map((e) => ({
      id: e.event.id,
      type: e.event.type,
      sequence: e.event.data.sequence ?? 0,
      time: e.event.timestamp,
      deliveries: endpointIds
        .map((ep) => strip<Delivery>(deliveries.get(deliveryPk(ep, e.event.id))))
        .filter((d): d is Delivery => d !== undefined)
        .map((d) => {
          const a = d.attempts[d.attempts.length - 1];
          return { endpointId: d.endpointId, status: d.status, tries: d.tries, ...(a ? { lastAttempt: { at: a.at, httpStatus: a.status, ms: a.ms } } : {}) };
        }),
    }));
  }

  // ---- endpoints ----

  /** Endpoint writes begun and ended through this store (each counts twice): see endpointGeneration. */
  private endpointWrites = 0;

  /**
   * Changes whenever an endpoint write through this store begins or ends, and whenever the database answers
   * one from anywhere (endpointWritesSeen, where given): a list of a caller's endpoints read under the same
   * generation is still what the table holds (the local relay keeps one that long, EventRelay.endpointsOnce).
   */
  endpointGeneration(): number {
    return this.endpointWrites + (this.endpointWritesSeen?.() ?? 0);
  }

  /** Whether endpointGeneration moves with every process's endpoint writes (the local stack's own dynalite), not only this store's. */
  countsEveryEndpointWrite(): boolean {
    return this.endpointWritesSeen !== undefined;
  }

  /** Runs an endpoint write, counted before and after (a list read while it runs is not kept). */
  private async endpointWrite<T>(write: () => Promise<T>): Promise<T> {
    this.endpointWrites++;
    try {
      return await write();
    } finally {
      this.endpointWrites++;
    }
  }

  /**
   * Makes an endpoint, or replaces it when it is still at the version `e` was read at (`e.version`) and
   * belongs to `e.caller`. False when the condition fails: deleted, another caller's, or changed since.
   */
  putEndpoint(e: Endpoint, create: boolean): Promise<boolean> {
    return this.endpointWrite(() => this.writeEndpoint(e, create));
  }

  private async writeEndpoint(e: Endpoint, create: boolean): Promise<boolean> {
    const read = e.version;
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { pk: endpointPk(e.id), ...e, version: create ? 1 : (read ?? 0) + 1, [TABLE_KEYS.eventsIndexHash]: endpointsKey(e.caller), [TABLE_KEYS.eventsIndexRange]: e.createdMs },
          // The caller is part of the condition: no write of one caller's changes another's endpoint.
          ConditionExpression: create ? 'attribute_not_exists(pk)' : `caller = :c AND ${read === undefined ? 'attribute_not_exists(version)' : 'version = :v'}`,
          ...(create ? {} : { ExpressionAttributeValues: { ':c': e.caller, ...(read === undefined ? {} : { ':v': read }) } }),
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  async getEndpoint(id: string): Promise<Endpoint | undefined> {
    const res = await this.doc.send(new GetCommand({ TableName: this.tableName, Key: { pk: endpointPk(id) }, ConsistentRead: true }));
    return strip<Endpoint>(res.Item);
  }

  deleteEndpoint(id: string, caller: string): Promise<boolean> {
    return this.endpointWrite(() => this.removeEndpoint(id, caller));
  }

  private async removeEndpoint(id: string, caller: string): Promise<boolean> {
    try {
      await this.doc.send(new DeleteCommand({ TableName: this.tableName, Key: { pk: endpointPk(id) }, ConditionExpression: 'caller = :c', ExpressionAttributeValues: { ':c': caller } }));
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  async listEndpoints(caller: string): Promise<Endpoint[]> {
    const keys = await this.keys(endpointsKey(caller), { limit: 1000 });
    const items = await this.getMany(keys.map((k) => k.pk));
    return keys.map((k) => strip<Endpoint>(items.get(k.pk))).filter((e): e is Endpoint => e !== undefined);
  }

  /**
   * Sets fields of an endpoint without the read-modify-write of putEndpoint (the deliverer's bookkeeping),
   * counting it as a write: a caller's change made from an earlier read then fails its condition.
   */
  patchEndpoint(id: string, set: Partial<Pick<Endpoint, 'failingSince' | 'pausedUntil' | 'disabled'>>, remove: ('failingSince' | 'pausedUntil')[] = []): Promise<void> {
    return this.endpointWrite(() => this.setEndpointFields(id, set, remove));
  }

  private async setEndpointFields(id: string, set: Partial<Pick<Endpoint, 'failingSince' | 'pausedUntil' | 'disabled'>>, remove: ('failingSince' | 'pausedUntil')[]): Promise<void> {
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = {};
    const sets: string[] = [];
    for (const [k, v] of Object.entries(set)) {
      if (v === undefined) continue;
      names[`#${k}`] = k;
      values[`:${k}`] = v;
      sets.push(`#${k} = :${k}`);
    }
    for (const k of remove) names[`#${k}`] = k;
    if (sets.length === 0 && remove.length === 0) return;
    names['#version'] = 'version';
    values[':one'] = 1;
    values[':zero'] = 0;
    sets.push('#version = if_not_exists(#version, :zero) + :one');
    const expression = [`SET ${sets.join(', ')}`, remove.length ? `REMOVE ${remove.map((k) => `#${k}`).join(', ')}` : ''].filter(Boolean).join(' ');
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: endpointPk(id) },
          UpdateExpression: expression,
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        }),
      );
    } catch (err) {
      // Deleted meanwhile: nothing to keep.
      if (!isConditionFailure(err)) throw err;
    }
  }

  // ---- deliveries ----

  /** Makes the delivery unless it exists (a relay publishing twice makes one). True when this call made it. */
  async createDelivery(d: Delivery): Promise<boolean> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { pk: deliveryPk(d.endpointId, d.eventId), ...d, [TABLE_KEYS.eventsIndexHash]: dueKey(d.endpointId), [TABLE_KEYS.eventsIndexRange]: d.nextAttemptAt, ttl: this.ttl() },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  async getDelivery(endpointId: string, eventId: string): Promise<Delivery | undefined> {
    const res = await this.doc.send(new GetCommand({ TableName: this.tableName, Key: { pk: deliveryPk(endpointId, eventId) }, ConsistentRead: true }));
    return strip<Delivery>(res.Item);
  }

  /**
   * Deliveries of an endpoint due at or before `before`, soonest first, and whether the index gave a full
   * page of `limit` keys (more may be due behind it). Counted on the keys, not on the pending deliveries:
   * an entry of one sent meanwhile (events-index is eventually consistent in AWS) is dropped here, and a
   * page short by it is still full. Due by the item, not by its index entry: one another invocation has
   * just claimed (claimDelivery moves it to the claim's end) is not due, whatever the index still shows.
   */
  async due(endpointId: string, before: number, limit: number): Promise<{ deliveries: Delivery[]; full: boolean }> {
    const keys = await this.keys(dueKey(endpointId), { before, limit });
    const items = await this.getMany(keys.map((k) => k.pk));
    const deliveries = keys.map((k) => strip<Delivery>(items.get(k.pk))).filter((d): d is Delivery => d !== undefined && d.status === 'pending' && d.nextAttemptAt <= before);
    return { deliveries, full: keys.length >= limit };
  }

  /** The next due time of an endpoint's earliest pending delivery. */
  async nextDue(endpointId: string): Promise<number | undefined> {
    return (await this.keys(dueKey(endpointId), { limit: 1 }))[0]?.at;
  }

  /**
   * Takes a due delivery for one sender until `until` (one conditional write on what was read: still
   * pending, same tries, same due time): two delivery functions that read it at once send it once. The
   * other finds the condition failed, and any later read finds it due only at `until`, after which a
   * sender that died mid-send is replaced.
   */
  async claimDelivery(d: Delivery, until: number): Promise<boolean> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: deliveryPk(d.endpointId, d.eventId) },
          UpdateExpression: 'SET nextAttemptAt = :u, #r = :u',
          ConditionExpression: '#s = :pending AND tries = :t AND nextAttemptAt = :n',
          ExpressionAttributeNames: { '#s': 'status', '#r': TABLE_KEYS.eventsIndexRange },
          ExpressionAttributeValues: { ':u': until, ':pending': 'pending', ':t': d.tries, ':n': d.nextAttemptAt },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  /**
   * Writes the delivery's outcome if no one else did since `expectedTries` (one conditional write): a
   * pending delivery stays in its endpoint's due partition at its next attempt; a finished one leaves it.
   */
  async recordAttempt(d: Delivery, expectedTries: number): Promise<boolean> {
    const attempts = d.attempts.slice(-ATTEMPTS_KEPT);
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.tableName,
          Item: {
            pk: deliveryPk(d.endpointId, d.eventId),
            ...d,
            attempts,
            ...(d.status === 'pending' ? { [TABLE_KEYS.eventsIndexHash]: dueKey(d.endpointId), [TABLE_KEYS.eventsIndexRange]: d.nextAttemptAt } : {}),
            ttl: this.ttl(),
          },
          ConditionExpression: 'tries = :t',
          ExpressionAttributeValues: { ':t': expectedTries },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }
}

