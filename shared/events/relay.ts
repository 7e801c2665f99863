import type { Logger } from '../log.js';
import { eventOf, NO_CALLER, type OutboxRecord } from './model.js';
import type { Delivery, Endpoint, EventStore, StoredEvent } from './store.js';

/**
 * What the relay and fanOut use of the store: the DynamoDB EventStore, or the deterministic simulation's
 * (test/sim/events.ts), which drives this same relay code under crashes and lost replies.
 */
export type RelayStore = Pick<EventStore, 'pending' | 'pendingByScan' | 'getEvent' | 'putEvent' | 'clearPending' | 'createDelivery' | 'listEndpoints'> & Partial<Pick<EventStore, 'endpointGeneration'>>;

/** Where a bus message says its event is (AWS, functions/event-delivery.ts): the record's pending mark, and the event's id. */
export interface PendingPointer {
  id: string;
  /** The pending partition of events-index, `pending#<shard>`. */
  eventsKey: string;
  /** The mark's range key: when the event was stamped (epoch ms). */
  at: number;
}

/**
 * The record a bus message is about, found without its key (a NIF natural key holds the personId, and
 * the bus is read by others): the pending records stamped at that moment in that partition, of which
 * only one holding the event pending. None when its event was handed on already (by another message of
 * the same record, whose later event moved the mark, or by the minute run), or when the index does not
 * show it yet: the minute run's backstop (`drain`) hands that one on from the record itself.
 */
export async function recordsPointedAt(store: Pick<EventStore, 'pendingAt'>, p: PendingPointer): Promise<OutboxRecord[]> {
  return (await store.pendingAt(p.eventsKey, p.at)).filter((r) => (r.pendingEvents ?? (r.lastEvent ? [r.lastEvent] : [])).some((e) => e.id === p.id));
}

/** The sequence number of a record copy's last event (0: none yet): of two copies, the higher is the newer. */
const lastSeq = (r: OutboxRecord): number => r.lastEvent?.seq ?? 0;

/** Events a relay pass hands on at once. */
const RELAY_PARALLEL = 8;

/** Whether an endpoint takes an event of `type` made at `at` (an endpoint registered later does not get older events by a re-publish). */
export function wants(endpoint: Endpoint, type: string, at: number): boolean {
  return !endpoint.disabled && endpoint.createdMs <= at && (endpoint.eventTypes.length === 0 || (endpoint.eventTypes as string[]).includes(type));
}

/**
 * Hands a stored event to each of the caller's endpoints that wants it: one delivery item per endpoint
 * and event, made once (a conditional write), so publishing the same event twice makes nothing new.
 * Returns the endpoints given a new delivery.
 */
export async function fanOut(store: RelayStore, stored: StoredEvent, now: number, only?: Endpoint[], endpointsOf?: (caller: string) => Promise<Endpoint[]>, madeDeliveries?: Delivery[]): Promise<string[]> {
  const endpoints = only ?? (stored.caller === NO_CALLER ? [] : await (endpointsOf ?? ((c) => store.listEndpoints(c)))(stored.caller));
  const made: string[] = [];
  for (const e of endpoints) {
    if (!only && !wants(e, stored.event.type, stored.createdMs)) continue;
    const delivery: Delivery = {
      endpointId: e.id,
      eventId: stored.event.id,
      caller: stored.caller,
      event: stored.event,
      status: 'pending',
      tries: 0,
      nextAttemptAt: now,
      attempts: [],
      ...(stored.previousId ? { previousId: stored.previousId } : {}),
      createdMs: now,
      updatedAt: new Date(now).toISOString(),
    };
    if (await store.createDelivery(delivery)) {
      made.push(e.id);
      madeDeliveries?.push(delivery);
    }
  }
  return made;
}

/** How long the local relay keeps a caller's endpoints when no counted endpoint write says otherwise. */
export const ENDPOINTS_KEPT_MS = 1_000;

/**
 * The local relay of the outbox (in AWS the table's stream and the pipe do this part): finds records
 * whose event is pending (events-index), keeps the event, makes its deliveries and clears the mark.
 * Every step is idempotent, so a kill anywhere between the status write and the clear loses nothing: the
 * next pass (or the next start) does it again, and makes the same event id and no second delivery.
 */
export class EventRelay {
  private running: Promise<void> | undefined;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Events handed on, for the benchmark and tests. */
  handedOn = 0;

  constructor(
    private readonly store: RelayStore,
    private readonly opts: {
      log: Logger;
      clock?: () => number;
      pollMs?: number;
      /** The deliveries a publish made, as written (the local deliverer sends them without reading them back: Deliverer.offer). */
      onDeliveries?: (endpointIds: string[], deliveries: Delivery[]) => void;
    },
  ) {}

  private now(): number {
    return (this.opts.clock ?? Date.now)();
  }

  /** Records a write just stamped, handed on by the next pass without reading the index (latest per key). */
  private offered = new Map<string, OutboxRecord>();
  /** Whether the next pass reads the pending partitions (the poll, a plain kick) or only the offered records. */
  private scan = true;

  /** Starts the fallback poll (a record written by another process, a kick that was missed). */
  start(): this {
    const every = this.opts.pollMs ?? 2_000;
    this.timer = setInterval(() => this.kick(), every);
    this.timer.unref();
    return this;
  }

  /**
   * A write of this process just stamped an event on `record` (as written): the next pass hands it on
   * from this copy, without the four pending-partition Queries and the BatchGetItem a scanning pass
   * costs. Safe with a stale copy: publishing is idempotent and the clear is conditional on its event
   * being the record's last; anything missed here is found by the poll.
   */
  offer(record: OutboxRecord): void {
    if (this.closed) return;
    // Two writes of one record answered out of order (two workers): the older copy would hand on only its own
    // events and fail its clear, leaving the newer one to the poll.
    const had = this.offered.get(record.pk);
    if (!had || lastSeq(record) >= lastSeq(had)) this.offered.set(record.pk, record);
    this.run(false);
  }

  /** Asks for a scanning pass soon (the poll); passes never overlap. */
  kick(): void {
    this.run(true);
  }

  private run(scan: boolean): void {
    if (this.closed) return;
    if (scan) this.scan = true;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      try {
        // Bounded: a pass per kick or offer that came in during the one before, and 100 passes at most.
        for (let pass = 0; pass < 100; pass++) {
          this.again = false;
          const offered = [...this.offered.values()];
          this.offered.clear();
          // One look-up of a caller's endpoints for the offered records of this pass, as drain does; no
          // look-up of each event first (a fresh stamp is new, and publishing is idempotent either way).
          const endpointsOf = this.endpointsOnce();
          for (let i = 0; i < offered.length; i += RELAY_PARALLEL) await Promise.all(offered.slice(i, i + RELAY_PARALLEL).map((r) => this.handOn(r, endpointsOf, true)));
          const scanning = this.scan;
          this.scan = false;
          const n = scanning ? await this.drain() : 0;
          if (!this.again && n === 0) break;
          if (this.closed) break;
        }
      } catch (err) {
        if (!this.closed) this.opts.log.warn('event relay pass failed; the next one retries', { error: err });
      } finally {
        this.running = undefined;
      }
    })();
  }

  /**
   * Callers' endpoints as last read, and the store's endpoint generation at the read: kept for passes to
   * come while no endpoint was written since (through the store: this process's routes and deliverer; at
   * the local stack's own dynalite: any process, `serverless invoke local` included) and for at most
   * ENDPOINTS_KEPT_MS (another process's write to a DynamoDB the stack was given, which it cannot count).
   * A look-up per offered record was a Query and a BatchGetItem per payment (issue 23: DynamoDB requests
   * per payment).
   */
  private readonly endpointLists = new Map<string, { generation: number; at: number; found: Promise<Endpoint[]> }>();

  /** A look-up of callers' endpoints that reads each caller's at most once a pass. */
  private endpointsOnce(): (caller: string) => Promise<Endpoint[]> {
    const looked = new Map<string, Promise<Endpoint[]>>();
    return (caller) => {
      let found = looked.get(caller);
      if (found) return found;
      const generation = this.store.endpointGeneration?.();
      const kept = this.endpointLists.get(caller);
      if (generation !== undefined && kept && kept.generation === generation && this.now() - kept.at < ENDPOINTS_KEPT_MS) found = kept.found;
      else {
        found = this.store.listEndpoints(caller);
        if (generation !== undefined) {
          const entry = { generation, at: this.now(), found };
          this.endpointLists.set(caller, entry);
          // A failed read is not kept (the next pass reads again).
          found.catch(() => this.endpointLists.get(caller) === entry && this.endpointLists.delete(caller));
        }
      }
      looked.set(caller, found);
      return found;
    };
  }

  /** One pass: every pending event found is handed on. Returns how many. */
  async drain(before = this.now()): Promise<number> {
    // Records offered since this pass began are handed on by the next pass from the copy in hand: here they
    // would cost a read of the event, and that pass would put and clear it once more. Not when the index shows
    // a later event than that copy (another process stamped it meanwhile): the copy's clear would fail, and the
    // later event wait for the poll.
    const pending = (await this.store.pending(before)).filter((r) => {
      const copy = this.offered.get(r.pk);
      return !copy || lastSeq(copy) < lastSeq(r);
    });
    // One look-up of a caller's endpoints per pass, not per event; events side by side, a few at a time.
    const endpointsOf = this.endpointsOnce();
    for (let i = 0; i < pending.length; i += RELAY_PARALLEL) await Promise.all(pending.slice(i, i + RELAY_PARALLEL).map((r) => this.handOn(r, endpointsOf)));
    return pending.length;
  }

  /** At a start on kept data: what the index may not show (see EventStore.pendingByScan). */
  async recoverAtBoot(): Promise<number> {
    const pending = await this.store.pendingByScan();
    for (const r of pending) await this.handOn(r);
    return pending.length;
  }

  /** Hands on every event the record has pending; returns the deliveries made. */
  async handOn(record: OutboxRecord, endpointsOf?: (caller: string) => Promise<Endpoint[]>, fresh = false): Promise<string[]> {
    const last = record.lastEvent;
    if (!last) return [];
    const made: string[] = [];
    for (const stamped of record.pendingEvents ?? [last]) {
      const event = eventOf(record, stamped);
      // Kept only after its deliveries are made: a kept event is one handed on in full, and a record whose
      // mark an engine write from an older copy put back needs only the mark cleared again.
      if (!event || (!fresh && (await this.store.getEvent(event.id)))) continue;
      made.push(...(await this.publish({ event, caller: record.caller ?? NO_CALLER, createdMs: stamped.at, ...(stamped.previousId ? { previousId: stamped.previousId } : {}) }, endpointsOf)));
    }
    await this.store.clearPending(record.pk, last.id);
    return made;
  }

  /** Keeps the event (once) and makes its deliveries (once each): the part AWS's delivery function shares. */
  async publish(stored: StoredEvent, endpointsOf?: (caller: string) => Promise<Endpoint[]>): Promise<string[]> {
    const deliveries: Delivery[] = [];
    const made = await fanOut(this.store, stored, this.now(), undefined, endpointsOf, deliveries);
    if (await this.store.putEvent(stored)) this.handedOn++;
    if (made.length > 0) this.opts.onDeliveries?.(made, deliveries);
    return made;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.running;
  }
}
