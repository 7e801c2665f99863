import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { documentClient, type makeDynamoClient } from '../../../shared/store/dynamo.js';
import type { DeliveryBinding, DeliveryClaimRequest } from '../../../shared/store/port.js';
import { ensureTable } from '../../../shared/store/table.js';
import { DynamoWebhookStore } from '../../../shared/store/webhooks.js';
import { startDynalite } from '../../helpers/dynalite.js';

const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);
const binding: DeliveryBinding = { route: 'POST /v1/nif/membership/payments', path: 'p', clubId: 'c1', idempotencyKey: null, patient: null, body: 'b' };

describe('DynamoWebhookStore on dynalite', () => {
  let close: (() => Promise<void>) | undefined;
  let client: ReturnType<typeof makeDynamoClient>;
  let store: DynamoWebhookStore;

  beforeAll(async () => {
    ({ client, close } = await startDynalite());
    await ensureTable(client, 'records');
    store = new DynamoWebhookStore(client, 'records');
  });
  afterAll(async () => {
    await close?.();
  });

  const request = (id: string, over: Partial<DeliveryClaimRequest> = {}): DeliveryClaimRequest => ({
    sender: 'webhook', id, binding, owner: 'r1', leaseUntil: NOW + 30_000, expiresAt: NOW / 1000 + 3600, ...over,
  });

  it('claims an id once, as the item webhook#<sender>#<id> with its TTL; the same id again is reported, not claimed', async () => {
    expect(await store.claim(request('m1'), NOW)).toEqual({ claimed: true });
    const item = (await documentClient(client).send(new GetCommand({ TableName: 'records', Key: { pk: 'webhook#webhook#m1' } }))).Item;
    expect(item).toMatchObject({ binding, owner: 'r1', ttl: NOW / 1000 + 3600 });
    expect(await store.claim(request('m1', { owner: 'r2' }), NOW + 1000)).toMatchObject({ claimed: false, binding, leaseUntil: NOW + 30_000 });
    // Another sender's id of the same name is another delivery.
    expect(await store.claim(request('m1', { sender: 'adyen' }), NOW)).toEqual({ claimed: true });
  });

  it('only the owner stores the answer, once; then the answer is what the id reports', async () => {
    await store.claim(request('m2'), NOW);
    expect(await store.answer('webhook', 'm2', 'someone-else', { status: 201, headers: {}, body: '{}' })).toBe(false);
    expect(await store.answer('webhook', 'm2', 'r1', { status: 201, headers: { location: '/x' }, body: '{"a":1}' })).toBe(true);
    expect(await store.answer('webhook', 'm2', 'r1', { status: 500, headers: {}, body: '' })).toBe(false);
    // Even after its lease, an answered delivery is never taken over.
    expect(await store.claim(request('m2', { owner: 'r3' }), NOW + 60_000)).toMatchObject({ claimed: false, answer: { status: 201, headers: { location: '/x' }, body: '{"a":1}' } });
  });

  it('an identical delivery takes over a dead or released first attempt; a different one never does', async () => {
    await store.claim(request('m3'), NOW);
    expect((await store.claim(request('m3', { owner: 'r2', binding: { ...binding, clubId: 'c2' } }), NOW + 60_000)).claimed).toBe(false);
    expect(await store.claim(request('m3', { owner: 'r2' }), NOW + 60_000)).toEqual({ claimed: true });
    // The first one's late answer no longer counts.
    expect(await store.answer('webhook', 'm3', 'r1', { status: 201, headers: {}, body: '' })).toBe(false);
    await store.claim(request('m4'), NOW);
    expect(await store.release('webhook', 'm4', 'r1')).toBe(true);
    expect((await store.claim(request('m4', { owner: 'r2', binding: { ...binding, body: 'other' } }), NOW + 1000)).claimed).toBe(false);
    expect(await store.claim(request('m4', { owner: 'r2' }), NOW + 1000)).toEqual({ claimed: true });
  });

  it('an id whose memory expired is forgotten, even before DynamoDB deletes the item', async () => {
    await store.claim(request('m5'), NOW);
    await store.answer('webhook', 'm5', 'r1', { status: 201, headers: {}, body: '' });
    expect(await store.claim(request('m5', { owner: 'r2', binding: { ...binding, body: 'new' } }), NOW + 3601_000)).toEqual({ claimed: true });
  });

  it('keeps a large answer gzipped and gives it back whole', async () => {
    const body = JSON.stringify({ history: Array.from({ length: 3000 }, (_, i) => ({ at: `t${i}`, event: 'retried', detail: 'x'.repeat(40) })) });
    await store.claim(request('m6'), NOW);
    expect(await store.answer('webhook', 'm6', 'r1', { status: 202, headers: {}, body })).toBe(true);
    const item = (await documentClient(client).send(new GetCommand({ TableName: 'records', Key: { pk: 'webhook#webhook#m6' } }))).Item;
    expect(item?.answer.body).toBeUndefined();
    expect(item?.answer.gzipped).toBeDefined();
    expect(await store.claim(request('m6', { owner: 'r2' }), NOW)).toMatchObject({ claimed: false, answer: { status: 202, body } });
  });
});
