import { describe, expect, it } from 'vitest';
import { decodeListCursor, listPage } from '../../../shared/cli/listing.js';
import type { PaymentRecord, Status } from '../../../shared/core/types.js';
import type { ListPage, RecordStore } from '../../../shared/store/port.js';

/**
 * The store's listing contract: one (system, status) stream, newest first; the cursor is the sort key
 * of the last record handed out, as DynamoRecordStore's is per shard (so a record leaving the stream
 * does not shift what comes after it).
 */
class FakeStore {
  readonly records = new Map<string, PaymentRecord>();
  add(system: string, status: Status, createdMs: number): void {
    const key = `${system}-${status}-${createdMs}`;
    this.records.set(key, { pk: `${system}#default#${key}`, system, key, status, createdMs, createdAt: new Date(createdMs).toISOString() } as PaymentRecord);
  }
  async list(system: string, status: Status, opts: { limit: number; cursor?: string; since?: number }): Promise<ListPage> {
    const after = opts.cursor === undefined ? Infinity : Number(opts.cursor);
    const all = [...this.records.values()]
      .filter((r) => r.system === system && r.status === status && (opts.since === undefined || (r.createdMs ?? 0) >= opts.since) && (r.createdMs ?? 0) < after)
      .sort((a, b) => (b.createdMs ?? 0) - (a.createdMs ?? 0));
    const page = all.slice(0, opts.limit);
    const last = page[page.length - 1];
    return { records: page, ...(all.length > opts.limit && last ? { cursor: String(last.createdMs) } : {}) };
  }
}

const asStore = (s: FakeStore) => s as unknown as RecordStore;

async function everything(store: FakeStore, query: Parameters<typeof listPage>[1], limit: number): Promise<string[][]> {
  const pages: string[][] = [];
  let cursor: string | undefined;
  for (let i = 0; i < 50; i++) {
    const page = await listPage(asStore(store), query, limit, cursor);
    pages.push(page.records.map((r) => r.key));
    cursor = page.cursor;
    if (!cursor) break;
  }
  return pages;
}

describe('listing several systems and statuses a page at a time', () => {
  it('merges the streams newest first and hands out every record exactly once', async () => {
    const store = new FakeStore();
    for (let i = 0; i < 9; i++) store.add('cambio', 'posted', 1_000 + i * 3);
    for (let i = 0; i < 5; i++) store.add('cambio', 'held', 1_001 + i * 5);
    for (let i = 0; i < 4; i++) store.add('brp', 'failed', 1_002 + i * 7);
    const expected = [...store.records.values()].sort((a, b) => (b.createdMs ?? 0) - (a.createdMs ?? 0)).map((r) => r.key);
    const pages = await everything(store, { systems: ['cambio', 'brp', 'nif'], statuses: ['posted', 'held', 'failed'] }, 4);
    expect(pages.flat()).toEqual(expected);
    expect(pages.slice(0, -1).every((p) => p.length === 4)).toBe(true);
    expect(pages.length).toBe(Math.ceil(expected.length / 4));
  });

  it('says there is more only while there is', async () => {
    const store = new FakeStore();
    store.add('cambio', 'held', 1);
    store.add('cambio', 'held', 2);
    expect((await listPage(asStore(store), { systems: ['cambio'], statuses: ['held'] }, 2)).cursor).toBeUndefined();
    const first = await listPage(asStore(store), { systems: ['cambio'], statuses: ['held'] }, 1);
    expect(first.records.map((r) => r.createdMs)).toEqual([2]);
    const second = await listPage(asStore(store), { systems: [], statuses: [] }, 1, first.cursor);
    // The cursor carries the query: the second page lists the same streams.
    expect(second.records.map((r) => r.createdMs)).toEqual([1]);
    expect(second.cursor).toBeUndefined();
    expect(decodeListCursor(first.cursor as string).query).toEqual({ systems: ['cambio'], statuses: ['held'] });
  });

  it('keeps the time bound in the cursor', async () => {
    const store = new FakeStore();
    for (let i = 0; i < 6; i++) store.add('nif', 'unknown', i * 10);
    const pages = await everything(store, { systems: ['nif'], statuses: ['unknown'], since: 25 }, 2);
    expect(pages.flat()).toEqual(['nif-unknown-50', 'nif-unknown-40', 'nif-unknown-30']);
  });

  it('never skips a record that changed status between pages', async () => {
    const store = new FakeStore();
    for (let i = 0; i < 6; i++) store.add('cambio', 'retrying', 100 - i);
    const first = await listPage(asStore(store), { systems: ['cambio'], statuses: ['retrying', 'posted'] }, 2);
    // The newest one shown settles: it leaves the retrying stream before the next page is read.
    const moved = store.records.get('cambio-retrying-100') as PaymentRecord;
    store.records.set(moved.key, { ...moved, status: 'posted' });
    const next = await listPage(asStore(store), { systems: [], statuses: [] }, 10, first.cursor);
    const shown = [...first.records, ...next.records].map((r) => r.key);
    for (let i = 0; i < 6; i++) expect(shown).toContain(`cambio-retrying-${100 - i}`);
  });

  it('shows a record once even when it moved between two streams while they were read', async () => {
    const store = new FakeStore();
    store.add('cambio', 'retrying', 10);
    store.add('cambio', 'posted', 5);
    const moving = store.records.get('cambio-retrying-10') as PaymentRecord;
    const list = store.list.bind(store);
    // The retrying stream is read first; the record settles before the posted stream is read.
    let settled!: () => void;
    const hasSettled = new Promise<void>((resolve) => (settled = resolve));
    store.list = async (system, status, opts) => {
      if (status === 'posted') await hasSettled;
      const page = await list(system, status, opts);
      if (status === 'retrying') {
        store.records.set('cambio-posted-10', { ...moving, status: 'posted' });
        settled();
      }
      return page;
    };
    const page = await listPage(asStore(store), { systems: ['cambio'], statuses: ['retrying', 'posted'] }, 10);
    expect(page.records.map((r) => r.pk)).toEqual([moving.pk, 'cambio#default#cambio-posted-5']);
  });

  it('refuses a cursor it did not print', async () => {
    await expect(listPage(asStore(new FakeStore()), { systems: [], statuses: [] }, 5, 'not-a-cursor')).rejects.toThrow(/--cursor is not one this command printed/);
  });
});
