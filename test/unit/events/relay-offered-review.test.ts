import { describe, expect, it } from 'vitest';
import { stampEvent, type OutboxRecord } from '../../../shared/events/model.js';
import { EventRelay, type RelayStore } from '../../../shared/events/relay.js';
import type { Delivery, StoredEvent } from '../../../shared/events/store.js';
import { createLogger } from '../../../shared/log.js';
import { NIF_RECORD } from '../../helpers/records.js';

const base = NIF_RECORD;

const quiet = createLogger({}, 'silent');

/** The relay's items in memory, the table's semantics (clearPending conditional on the record's last event); `pending` can be held. */
function memoryStore() {
  const records = new Map<string, OutboxRecord>();
  const events = new Map<string, StoredEvent>();
  let gate: Promise<void> | undefined;
  let reading: (() => void) | undefined;
  const store: RelayStore = {
    pending: async (before) => {
      const found = [...records.values()].filter((r) => r.eventsKey && (r.eventAt ?? 0) <= before);
      reading?.();
      await gate;
      return found;
    },
    pendingByScan: async () => [...records.values()].filter((r) => r.eventsKey),
    getEvent: async (id) => events.get(id),
    putEvent: async (e) => {
      if (events.has(e.event.id)) return false;
      events.set(e.event.id, e);
      return true;
    },
    clearPending: async (pk, id) => {
      const r = records.get(pk);
      if (!r || r.lastEvent?.id !== id) return false;
      const { eventsKey: _k, eventAt: _a, pendingEvents: _p, eventNew: _n, ...rest } = r;
      records.set(pk, rest as OutboxRecord);
      return true;
    },
    createDelivery: async (_d: Delivery) => true,
    listEndpoints: async () => [],
  };
  /** Holds the next `pending` read after it has read the table; resolves when it has. */
  const holdRead = () => {
    let release!: () => void;
    gate = new Promise<void>((resolve) => (release = resolve));
    const read = new Promise<void>((resolve) => (reading = resolve));
    return { read, release: () => (reading = undefined, (gate = undefined), release()) };
  };
  return { store, records, events, holdRead };
}

/** Lets the relay's passes run out (every store call here answers at once), then closes it. */
async function settled(relay: EventRelay): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 50));
  await relay.close();
}

describe('review of 6c1c112: the local relay leaves a record offered during its poll to the next pass', () => {
  it('hands on a newer event the poll read when the copy it was offered is older (stamped by another process meanwhile)', async () => {
    const { store, records, events, holdRead } = memoryStore();
    const relay = new EventRelay(store, { log: quiet, clock: () => 10_000 });
    // This process's write stamped `held` (its reply comes back late) ...
    const held = stampEvent({ ...base, status: 'held' }, 1_000);
    records.set(held.pk, held);
    // ... and another process (a second stack on the table, `serverless invoke local`) redrove it meanwhile.
    const redriven = stampEvent({ ...held, version: 2, status: 'retrying', history: [...held.history, { at: '2026-12-07T01:00:00.000Z', event: 'redriven' }] }, 2_000);
    records.set(redriven.pk, redriven);
    expect(redriven.pendingEvents?.map((e) => e.type)).toEqual(['payment.held', 'payment.redriven']);

    const hold = holdRead();
    relay.kick();
    await hold.read;
    // The poll's read has seen the record with both events; the late reply's offer comes in now.
    relay.offer(held);
    hold.release();
    await settled(relay);

    // Both events kept and the mark cleared in this run: not left to the poll 2 s later (as before 6c1c112).
    expect([...events.values()].map((e) => e.event.type).sort()).toEqual(['payment.held', 'payment.redriven']);
    expect(records.get(held.pk)?.eventsKey).toBeUndefined();
  });

  it('keeps the newer of two copies of one record offered out of order (two workers, the later write answered first)', async () => {
    const { store, records, events, holdRead } = memoryStore();
    const relay = new EventRelay(store, { log: quiet, clock: () => 10_000 });
    const held = stampEvent({ ...base, status: 'held' }, 1_000);
    const redriven = stampEvent({ ...held, version: 2, status: 'retrying', history: [...held.history, { at: '2026-12-07T01:00:00.000Z', event: 'redriven' }] }, 2_000);
    // A pass is busy (its poll reads an empty index): both offers wait for the next one, the older last.
    const hold = holdRead();
    relay.kick();
    await hold.read;
    records.set(redriven.pk, redriven);
    relay.offer(redriven);
    relay.offer(held);
    hold.release();
    await settled(relay);
    expect([...events.values()].map((e) => e.event.type).sort()).toEqual(['payment.held', 'payment.redriven']);
    expect(records.get(held.pk)?.eventsKey).toBeUndefined();
  });
});
