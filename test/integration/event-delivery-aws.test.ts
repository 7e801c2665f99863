import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { makeHandler } from '../../functions/event-delivery.js';
import { recordPk } from '../../shared/core/types.js';
import { eventId, PENDING_SHARDS, pendingKey } from '../../shared/events/model.js';
import { lambdaContext } from '../../shared/local/server.js';
import type { Stack } from '../../shared/local/stack.js';
import { shardOf } from '../../shared/store/indexes.js';
import { call, DEV_API_KEY, eventually, testStack } from '../helpers/stack.js';

/**
 * The AWS delivery function (functions/event-delivery.ts) is fed by EventsQueue. Whoever may send to that
 * queue (any principal of the account granted sqs:SendMessage) could put a message there that the bus
 * never made: the function must deliver only what the record itself says it reported.
 */
describe('the AWS event delivery function trusts the record, not the message (issue 21)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await testStack({ env: { API_KEYS: `${DEV_API_KEY},pos=key-of-pos` } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  const message = (detail: Record<string, string>) => ({
    Records: [{ messageId: randomUUID(), receiptHandle: randomUUID(), body: JSON.stringify({ detail }), attributes: { ApproximateReceiveCount: '1' }, messageAttributes: {}, eventSource: 'aws:sqs', awsRegion: 'eu-north-1', md5OfBody: '', eventSourceARN: 'arn:aws:sqs:eu-north-1:000000000000:events' }],
  }) as never;

  it('a forged message claiming payment.posted for a held payment publishes nothing', async () => {
    stack.cambio?.faults.push('403', '403');
    const key = `forged-${randomUUID().slice(0, 8)}`;
    const sent = await call(stack, 'POST', '/v1/cambio/payment-notices', { status: 'PAID', contactId: key, paymentType: 'CARD' }, { 'x-api-key': 'key-of-pos' });
    expect([201, 202]).toContain(sent.status);
    const pk = recordPk('cambio', 'default', key);
    // The genuine payment.held is handed on (by the local relay) and its mark cleared.
    await eventually(async () => {
      const r = (await stack.deps.store.get(pk)) as (Record<string, unknown> & { status: string }) | undefined;
      return r?.status === 'held' && r.eventsKey === undefined ? r : undefined;
    });
    // The next event id is predictable (key, revision, sequence): the forger makes the one for sequence 2.
    const forged = eventId(pk, 1, 2);
    const handler = makeHandler(async () => stack.deps);
    // As the bus names an event now (the pending mark it sits in, test/integration/event-bus.test.ts), and as
    // it did before (the record key), which the function still accepts from messages queued before a deploy.
    const at = String(Date.now());
    const eventsKey = pendingKey(shardOf(pk, PENDING_SHARDS));
    await handler(message({ id: forged, type: 'payment.posted', system: 'cambio', key, revision: '1', status: 'posted', sequence: '2', at, eventsKey }), lambdaContext('eventDelivery', randomUUID(), 20_000) as never);
    await handler(message({ id: forged, type: 'payment.posted', pk, system: 'cambio', key, revision: '1', status: 'posted', sequence: '2', at }), lambdaContext('eventDelivery', randomUUID(), 20_000) as never);
    expect(await stack.events.store.getEvent(forged)).toBeUndefined();
    const listed = await call(stack, 'GET', '/v1/events', undefined, { 'x-api-key': 'key-of-pos' });
    expect(listed.body.events.filter((e: { data: { key: string } }) => e.data.key === key).map((e: { type: string }) => e.type)).toEqual(['payment.held']);
  });

  it('reads no key DynamoDB would refuse for an old-shape message (over 2048 UTF-8 bytes, or not well-formed): one such message must not fail the batch', async () => {
    // 2048 characters but 4 000 bytes, and a lone surrogate: DynamoDB answers either read with a
    // ValidationException, which would fail the whole batch (its honest messages too) five times, into the DLQ.
    const oversized = `cambio#default#${'é'.repeat(2000)}`;
    const malformed = 'cambio#default#\ud800';
    expect(oversized.length).toBeLessThanOrEqual(2048);
    const get = vi.spyOn(stack.deps.store, 'get');
    try {
      const handler = makeHandler(async () => stack.deps);
      await handler(message({ id: 'evt_x', pk: oversized }), lambdaContext('eventDelivery', randomUUID(), 20_000) as never);
      await handler(message({ id: 'evt_x', pk: malformed }), lambdaContext('eventDelivery', randomUUID(), 20_000) as never);
      // Nor any item but a payment record: the role admits no other key for a record read (AccessDenied).
      for (const pk of ['endpoint#ep_1', 'limiter#cambio', 'fence#f1', 'webhook#stripe#1', 'event#evt_x', 'cambio']) await handler(message({ id: 'evt_x', pk }), lambdaContext('eventDelivery', randomUUID(), 20_000) as never);
      expect(get.mock.calls.map(([pk]) => pk).filter((pk) => Buffer.byteLength(pk, 'utf8') > 2048 || !pk.isWellFormed() || !pk.startsWith('cambio#'))).toEqual([]);
    } finally {
      get.mockRestore();
    }
  });
});
