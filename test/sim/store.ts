import type { PaymentRecord, Status } from '../../shared/core/types.js';
import { stampForWrite, type OutboxRecord } from '../../shared/events/model.js';
import type { DueKind } from '../../shared/store/indexes.js';
import { withIndexes } from '../../shared/store/indexes.js';
import type { ClaimResult, FenceStore, ListPage, RecordStore } from '../../shared/store/port.js';
import type { Container, Rng, World } from './world.js';

/**
 * The record table with DynamoDB's semantics, as the engine's ports see it: a claim is a put if absent
 * (answering with the old item), a replace is a put conditional on the version, fences are counters
 * set once. Every call is an operation the scheduler completes; faults are injected per call.
 */

export interface StoreFaults {
  /** The call fails before anything is written (throttling, a dropped connection). */
  errorBefore: number;
  /** The write is applied, then its reply is lost: the call throws. */
  lostReply: number;
  /**
   * The write is applied, its reply is lost, and the SDK's own retry of it fails its condition against
   * the item it just wrote: the call answers "someone else wrote first".
   */
  sdkRetryEcho: number;
  /**
   * Whether the faults above hit checkpoint writes and fence consumes too (scenario feature
   * `lostCheckpointReply`: the engine turns such a write into an ambiguous attempt, KNOWN_DEFECTS).
   */
  onCheckpoints: boolean;
}

export const NO_STORE_FAULTS: StoreFaults = { errorBefore: 0, lostReply: 0, sdkRetryEcho: 0, onCheckpoints: false };

/** Who made a write: a caller's request carries its caller name; engine actors carry none. */
export interface Writer {
  actor: string;
  caller?: string;
}

export interface WriteObserver {
  /** `heard`: the writer got the write's success back (no lost reply, no SDK retry failing against it, not dead). */
  (pk: string, before: PaymentRecord | undefined, after: PaymentRecord, writer: Writer, heard: boolean): void;
}

export class StoreError extends Error {
  override readonly name = 'StoreError';
}

/**
 * Records cross the port as they would over the wire: nothing the engine holds may change the table.
 * Stored records are deeply frozen instead of copied on every read (a copy per call cost most of a
 * seed's time): an engine that mutated a record it read would throw here (ES modules are strict).
 */
function freeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) freeze(x);
  }
  return v;
}
const copy = <T>(v: T): T => v;

/** A write that changes only the checkpoints (attemptContext.checkpoint): faults on it are a scenario feature. */
export function checkpointOnly(before: PaymentRecord, after: PaymentRecord): boolean {
  return (
    before.status === after.status &&
    before.attempts === after.attempts &&
    before.history.length === after.history.length &&
    before.fence?.id === after.fence?.id &&
    before.fence?.n === after.fence?.n &&
    before.leaseUntil === after.leaseUntil &&
    before.checkpoints !== after.checkpoints
  );
}

export class SimStore {
  readonly records = new Map<string, PaymentRecord>();
  readonly fenceItems = new Map<string, Map<number, number>>();
  faults: StoreFaults = NO_STORE_FAULTS;
  observers: WriteObserver[] = [];
  /** Called after the relay's clearPending removed a record's pending mark (no engine write: the version stays). */
  clearObservers: ((pk: string, before: PaymentRecord, after: PaymentRecord) => void)[] = [];
  /** What claim and replace stamp with: DynamoRecordStore's own (a test swaps in a broken one). */
  stamp: (record: PaymentRecord, now: number) => PaymentRecord = stampForWrite;

  constructor(
    private readonly world: World,
    private readonly shards = 8,
  ) {}

  /** `rng`: the generator to draw from (the events' actors bring their own, so the engine's scenario per seed is unchanged). */
  latency(r: Rng = this.world.rng): number {
    // Mostly a few milliseconds; now and then a slow one (a throttled partition, a GC pause).
    return r.chance(0.03) ? r.int(200, 3_000) : r.int(2, 12);
  }

  fault(checkpoint: boolean, r: Rng = this.world.rng): 'errorBefore' | 'lostReply' | 'echo' | undefined {
    const f = this.faults;
    if (checkpoint && !f.onCheckpoints) return undefined;
    if (r.chance(f.errorBefore)) return 'errorBefore';
    if (r.chance(f.lostReply)) return 'lostReply';
    if (r.chance(f.sdkRetryEcho)) return 'echo';
    return undefined;
  }

  private put(record: PaymentRecord, writer: Writer, heard: boolean): void {
    const before = this.records.get(record.pk);
    const stored = freeze(withIndexes(record, this.shards, this.world.now));
    this.records.set(record.pk, stored);
    for (const o of this.observers) o(record.pk, before, stored, writer, heard);
  }

  /**
   * The relay's clearPending (shared/events/store.ts): removes the pending mark of event `id` unless the
   * record has moved on to another event, and leaves the version (and everything else) alone.
   */
  clearPending(pk: string, id: string): boolean {
    const existing = this.records.get(pk) as OutboxRecord | undefined;
    if (!existing || existing.lastEvent?.id !== id) return false;
    const { eventsKey: _k, eventAt: _a, pendingEvents: _p, eventNew: _n, ...rest } = existing;
    const after = freeze(rest as PaymentRecord);
    this.records.set(pk, after);
    for (const o of this.clearObservers) o(pk, existing, after);
    return true;
  }

  /**
   * The ports as one container (and, for a caller's request, one caller) uses them. `clock`: the
   * container's own clock, which stamps the settlement events as DynamoRecordStore's does.
   */
  view(container: Container | undefined, writer: Writer, clock: () => number = () => this.world.now): RecordStore & FenceStore {
    const w = this.world;
    const io = <T>(effect: () => T, applyIfDead = false) => w.io(container, this.latency(), effect, applyIfDead);
    const log = (text: () => string) => w.log(writer.actor, text);
    return {
      // The settlement event is stamped when the call is made, as DynamoRecordStore.item() does before it
      // sends the write (the same stampForWrite: the engine's own record object gets the outbox fields).
      claim: (record) => {
        const item = this.stamp(record, clock());
        return io((): ClaimResult => {
          const existing = this.records.get(record.pk);
          const fault = this.fault(false);
          if (fault === 'errorBefore') {
            log(() => `store claim ${short(record.pk)}: error before writing`);
            throw new StoreError('simulated: the claim failed before it was written');
          }
          if (existing) return { claimed: false, existing: copy(existing) };
          this.put(item, writer, fault === undefined && !container?.dead);
          if (fault === 'lostReply') {
            log(() => `store claim ${short(record.pk)}: written, reply lost`);
            throw new StoreError('simulated: the claim was written, its reply lost');
          }
          if (fault === 'echo') {
            log(() => `store claim ${short(record.pk)}: written, reply lost, SDK retry fails against itself`);
            return { claimed: false, existing: copy(this.records.get(record.pk) as PaymentRecord) };
          }
          return { claimed: true };
        }, true);
      },
      get: (pk) => io(() => copy(this.records.get(pk))),
      getMany: (pks) =>
        io(() => {
          const out = new Map<string, PaymentRecord>();
          for (const pk of pks) {
            const r = this.records.get(pk);
            if (r) out.set(pk, copy(r));
          }
          return out;
        }),
      replace: (record, expectedVersion) => {
        const item = this.stamp(record, clock());
        return io(() => {
          const existing = this.records.get(record.pk);
          const fault = this.fault(existing !== undefined && checkpointOnly(existing, record));
          if (fault === 'errorBefore') {
            log(() => `store replace ${short(record.pk)} v${expectedVersion}: error before writing`);
            throw new StoreError('simulated: the write failed before it was made');
          }
          if (!existing || existing.version !== expectedVersion) return false;
          this.put({ ...item, version: expectedVersion + 1 }, writer, fault === undefined && !container?.dead);
          if (fault === 'lostReply') {
            log(() => `store replace ${short(record.pk)} v${expectedVersion}: written, reply lost`);
            throw new StoreError('simulated: the write was made, its reply lost');
          }
          if (fault === 'echo') {
            log(() => `store replace ${short(record.pk)} v${expectedVersion}: written, reply lost, SDK retry fails against itself`);
            return false;
          }
          return true;
        }, true);
      },
      due: (system, before, limit, kind: DueKind = 'due', after) =>
        io(() => {
          const out: { pk: string; at: number }[] = [];
          for (const r of this.records.values()) {
            if (r.system !== system || r.dueShard === undefined || !r.dueShard.startsWith(`${system}#${kind}#`)) continue;
            const at = r.nextAttemptAt ?? 0;
            if (at <= before && (after === undefined || at >= after)) out.push({ pk: r.pk, at });
          }
          out.sort((a, b) => a.at - b.at || (a.pk < b.pk ? -1 : 1));
          return out.slice(0, limit);
        }),
      list: (system, status: Status, opts) =>
        io((): ListPage => {
          const all = [...this.records.values()]
            .filter((r) => r.system === system && r.status === status && (opts.since === undefined || (r.createdMs ?? 0) >= opts.since))
            .sort((a, b) => (b.createdMs ?? 0) - (a.createdMs ?? 0));
          return { records: all.slice(0, opts.limit).map(copy) };
        }),
      consume: (id, entries) =>
        io(() => {
          const fault = this.fault(true);
          if (fault === 'errorBefore') {
            log(() => `fence consume ${id}: error before writing`);
            throw new StoreError('simulated: the fence write failed before it was made');
          }
          const item = this.fenceItems.get(id) ?? new Map<number, number>();
          this.fenceItems.set(id, item);
          const won = new Set<number>();
          for (const e of entries) {
            if (item.has(e.n)) continue;
            item.set(e.n, e.deadline);
            won.add(e.n);
          }
          if (fault === 'lostReply' || fault === 'echo') {
            // The DynamoDB adapter marks each consume's deadlines and reads them back when the reply is an
            // error or its own retry's refusal (shared/store/dynamo.ts, test/unit/store/fence-own.test.ts):
            // what this call wrote comes back as won.
            log(() => `fence consume ${id}: written, reply lost; read back as its own`);
          }
          return won;
        }, true),
      inspect: (id) => io(() => new Map(this.fenceItems.get(id) ?? [])),
    };
  }
}

/** A record key short enough for a trace line. */
export function short(pk: string): string {
  const parts = pk.split('#');
  return `${parts[0]}:${parts[parts.length - 1]}`;
}
