import { GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMPTY_LIMITER, DEFAULT_PACING, reserveSlots, type LimiterState } from '../../../shared/core/pacing.js';
import { DynamoLimiterStore, type makeDynamoClient } from '../../../shared/store/dynamo.js';
import { ensureTable } from '../../../shared/store/table.js';
import { itemSize, writeUnits } from '../../helpers/dynamo-capacity.js';
import { startDynalite } from '../../helpers/dynalite.js';

const T = Date.UTC(2026, 10, 30, 12, 0, 0);

describe('DynamoLimiterStore on dynalite: the known sends', () => {
  let close: (() => Promise<void>) | undefined;
  let client: ReturnType<typeof makeDynamoClient>;
  let store: DynamoLimiterStore;

  beforeAll(async () => {
    ({ client, close } = await startDynalite());
    await ensureTable(client, 'records');
    store = new DynamoLimiterStore(client, 'records');
  });
  afterAll(async () => {
    await close?.();
  });

  const raw = async (system: string) => (await client.send(new GetItemCommand({ TableName: 'records', Key: { pk: { S: `limiter#${system}` } } }))).Item;

  it.each([10, 100, 200])('at %i/s a full window of sends reads back exactly, and the item stays within one write unit', async (rate) => {
    const system = `rate-${rate}`;
    // A lane's sends promised ahead as well as the schedule's own: entries before and after `next`.
    const booked = reserveSlots({ ...EMPTY_LIMITER, lanes: {} }, rate, T, rate, Infinity, DEFAULT_PACING).state;
    const state: LimiterState = { ...booked, recent: [...(booked.recent ?? []), Math.ceil(booked.next) + 400].sort((a, b) => a - b) };
    expect(await store.write(system, state, 0)).toBe(true);
    const back = await store.read(system);
    expect(back.recent).toEqual(state.recent);
    expect(back.next).toBe(state.next);
    const item = await raw(system);
    // Stored as small offsets from the next slot, not as epoch times.
    expect(Number(item?.recentFrom?.N)).toBe(Math.floor(state.next));
    expect(Math.max(...(item?.recent?.L ?? []).map((v) => Math.abs(Number(v.N))))).toBeLessThan(2_000);
    expect(writeUnits(itemSize(item as Parameters<typeof itemSize>[0]))).toBe(1);
  });

  it('an item whose sends were written as epoch times (no recentFrom) still reads them', async () => {
    await client.send(
      new PutItemCommand({
        TableName: 'records',
        Item: { pk: { S: 'limiter#old' }, ver: { N: '3' }, next: { N: String(T) }, lastSlot: { N: String(T - 103) }, pausedUntil: { N: '0' }, lanes: { M: {} }, recent: { L: [{ N: String(T - 206) }, { N: String(T - 103) }] } },
      }),
    );
    expect((await store.read('old')).recent).toEqual([T - 206, T - 103]);
  });

  it('no known sends: no recent and no recentFrom written', async () => {
    expect(await store.write('none', { ...EMPTY_LIMITER, lanes: {}, next: T }, 0)).toBe(true);
    const item = await raw('none');
    expect(item?.recent).toBeUndefined();
    expect(item?.recentFrom).toBeUndefined();
    expect((await store.read('none')).recent).toBeUndefined();
  });
});
