import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PaymentRecord } from '../../../shared/core/types.js';
import { DynamoRecordStore, type makeDynamoClient } from '../../../shared/store/dynamo.js';
import { ensureTable } from '../../../shared/store/table.js';
import { startDynalite } from '../../helpers/dynalite.js';

/**
 * Issue 20, item 1: the owner is a condition of every write of a record, on dynalite through the real SDK,
 * not a read before it. A write carrying another caller fails as a lost race does (false), and the record
 * is left as its caller wrote it.
 */
const base = (key: string, caller?: string): PaymentRecord => ({
  pk: `kontantanalys#default#services:${key}`, system: 'kontantanalys', tenant: 'default', key: `services:${key}`, status: 'posted', version: 1, revision: 1, budgetFrom: 0,
  payloadHash: 'h-bob', request: { who: 'bob' }, ...(caller ? { caller } : {}), attempts: 1, failures: 0, checkpoints: { remoteId: 7 }, history: [], correlationId: 'r',
  createdAt: '2026-12-07T00:00:00.000Z', updatedAt: '2026-12-07T00:00:00.000Z', ttl: 2_000_000_000,
});

describe('DynamoRecordStore: the owner is part of the conditional write', () => {
  let close: (() => Promise<void>) | undefined;
  let client: ReturnType<typeof makeDynamoClient>;
  let store: DynamoRecordStore;

  beforeAll(async () => {
    ({ client, close } = await startDynalite());
    await ensureTable(client, 'records');
    store = new DynamoRecordStore(client, 'records');
  });
  afterAll(async () => {
    await close?.();
  });

  it("a replace carrying another caller is refused at the right version, and bob's record stays bob's", async () => {
    expect((await store.claim(base('atm-1', 'bob'))).claimed).toBe(true);
    const alices = { ...base('atm-1', 'alice'), payloadHash: 'h-alice', request: { who: 'alice' } };
    expect(await store.replace(alices, 1)).toBe(false);
    const kept = await store.get(base('atm-1').pk);
    expect(kept).toMatchObject({ caller: 'bob', version: 1, request: { who: 'bob' } });
  });

  it("a replace that would drop the caller is refused too: no write without an owner changes an owned record", async () => {
    expect((await store.claim(base('atm-2', 'bob'))).claimed).toBe(true);
    const { caller: _c, ...ownerless } = { ...base('atm-2', 'bob'), request: { who: 'nobody' } };
    expect(await store.replace(ownerless, 1)).toBe(false);
    expect(await store.get(base('atm-2').pk)).toMatchObject({ caller: 'bob', request: { who: 'bob' } });
  });

  it('its own caller replaces at the expected version as before', async () => {
    expect((await store.claim(base('atm-3', 'bob'))).claimed).toBe(true);
    expect(await store.replace({ ...base('atm-3', 'bob'), status: 'retrying' }, 1)).toBe(true);
    expect(await store.get(base('atm-3').pk)).toMatchObject({ caller: 'bob', status: 'retrying', version: 2 });
    expect(await store.replace({ ...base('atm-3', 'bob'), status: 'posted' }, 1)).toBe(false);
  });

  it('a record from before callers were stored may be written by its (unknown) submitter, with or without a caller', async () => {
    expect((await store.claim(base('atm-4'))).claimed).toBe(true);
    expect(await store.replace({ ...base('atm-4'), status: 'retrying' }, 1)).toBe(true);
    expect(await store.replace({ ...base('atm-4', 'alice'), status: 'posted' }, 2)).toBe(true);
    expect(await store.get(base('atm-4').pk)).toMatchObject({ caller: 'alice', version: 3 });
  });
});
