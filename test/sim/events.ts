import { PENDING_SHARDS, pendingKey, type OutboxRecord } from '../../shared/events/model.js';
import type { RelayStore } from '../../shared/events/relay.js';
import type { Delivery, Endpoint, EventStore, StoredEvent } from '../../shared/events/store.js';
import { short, StoreError, type SimStore } from './store.js';
import type { Container, Rng, World } from './world.js';

/**
 * The events-out items of the records table (issue 21) as the relay sees them (shared/events/store.ts):
 * the pending listing of events-index, clearPending on the records themselves (SimStore.clearPending),
 * event and delivery items made once, and each caller's endpoints. Writes meet the record store's own
 * faults (error before the write, reply lost after it, the SDK's retry failing against its own write),
 * drawn from the events' own generator so the engine's scenario per seed does not change.
 */
export class SimEventStore {
  readonly events = new Map<string, StoredEvent>();
  readonly deliveries = new Map<string, Delivery>();
  /** Event ids kept by putEvent, in the order they were kept. */
  readonly kept: string[] = [];
  /** When each event was kept (simulated time). */
  readonly keptAt = new Map<string, number>();
  /** When each container's writes met a fault (a relay pass that meets one leaves what it held to the poll). */
  readonly faultsAt = new Map<Container, number[]>();
  /** Called after a write of `container`'s applied (the relay's crash between publishing and clearing is injected here). */
  onApplied: (what: 'putEvent' | 'createDelivery' | 'clearPending', container: Container | undefined) => void = () => undefined;

  constructor(
    private readonly world: World,
    private readonly records: SimStore,
    private readonly rng: Rng,
    private readonly endpoints: ReadonlyMap<string, Endpoint[]>,
  ) {}

  /** Every record whose event is pending, oldest stamp first, as the index partitions list them. */
  private pendingNow(before: number, limit: number): OutboxRecord[] {
    const out: OutboxRecord[] = [];
    for (let s = 0; s < PENDING_SHARDS; s++) {
      const part = [...this.records.records.values()]
        .map((r) => r as OutboxRecord)
        .filter((r) => r.eventsKey === pendingKey(s) && r.lastEvent !== undefined && (r.eventAt ?? 0) <= before)
        .sort((a, b) => (a.eventAt ?? 0) - (b.eventAt ?? 0) || (a.pk < b.pk ? -1 : 1));
      out.push(...part.slice(0, limit));
    }
    return out;
  }

  endpointsOf(caller: string): Endpoint[] {
    return this.endpoints.get(caller) ?? [];
  }

  view(container: Container | undefined, actor: string): RelayStore & Pick<EventStore, 'pendingAt'> {
    const w = this.world;
    const io = <T>(effect: () => T, write = false) => w.io(container, this.records.latency(this.rng), effect, write);
    const log = (text: () => string) => w.log(actor, text);
    /** One conditional write with the store's faults: `apply` answers whether the condition held. */
    const write = (what: string, kind: 'putEvent' | 'createDelivery' | 'clearPending', apply: () => boolean, echo: boolean) =>
      io(() => {
        const fault = this.records.fault(false, this.rng);
        if (fault && container) this.faultsAt.set(container, [...(this.faultsAt.get(container) ?? []), this.world.now]);
        if (fault === 'errorBefore') {
          log(() => `${what}: error before writing`);
          throw new StoreError(`simulated: ${what} failed before it was written`);
        }
        const done = apply();
        if (done && !container?.dead) this.onApplied(kind, container);
        if (done && fault === 'lostReply') {
          log(() => `${what}: written, reply lost`);
          throw new StoreError(`simulated: ${what} was written, its reply lost`);
        }
        if (done && fault === 'echo') {
          log(() => `${what}: written, reply lost, SDK retry ${echo ? 'fails against itself' : 'succeeds again'}`);
          return !echo;
        }
        return done;
      }, true);
    return {
      pending: (before, limit = 100) => io(() => this.pendingNow(before, limit)),
      pendingByScan: () => io(() => this.pendingNow(Number.POSITIVE_INFINITY, Number.MAX_SAFE_INTEGER)),
      // AWS's delivery function finding a bus message's record by its mark (shared/events/relay.ts, recordsPointedAt).
      pendingAt: (partition, at, limit = 100) => io(() => this.pendingNow(at, Number.MAX_SAFE_INTEGER).filter((r) => r.eventsKey === partition && r.eventAt === at).slice(0, limit)),
      getEvent: (id) => io(() => this.events.get(id)),
      listEndpoints: (caller) => io(() => this.endpointsOf(caller)),
      putEvent: (e) =>
        write(
          `event put ${e.event.id.slice(4, 10)}`,
          'putEvent',
          () => {
            if (this.events.has(e.event.id)) return false;
            this.events.set(e.event.id, e);
            this.kept.push(e.event.id);
            this.keptAt.set(e.event.id, this.world.now);
            log(() => `event kept ${e.event.id.slice(4, 10)} ${e.event.type} #${e.event.data.sequence} of ${e.event.data.system}:${e.event.data.key}`);
            return true;
          },
          // A retry of a put-if-absent finds the item it wrote: "already there".
          true,
        ),
      createDelivery: (d) =>
        write(
          `delivery ${d.endpointId}/${d.eventId.slice(4, 10)}`,
          'createDelivery',
          () => {
            const k = `${d.endpointId}#${d.eventId}`;
            if (this.deliveries.has(k)) return false;
            this.deliveries.set(k, d);
            return true;
          },
          true,
        ),
      clearPending: (pk, id) =>
        write(
          `clear ${short(pk)} ${id.slice(4, 10)}`,
          'clearPending',
          () => this.records.clearPending(pk, id),
          // Its condition (lastEvent.id) still holds after it: the SDK's retry succeeds again.
          false,
        ),
    };
  }
}
