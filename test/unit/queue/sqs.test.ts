import { GetQueueAttributesCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { parseRetryMessage, retryMessage, SNAPSHOT_LIMIT_BYTES } from '../../../shared/queue/port.js';
import { SqsRetryQueue } from '../../../shared/queue/sqs.js';
import type { PaymentRecord } from '../../../shared/core/types.js';

const sqs = mockClient(SQSClient);
const CAMBIO = 'https://sqs.eu-north-1.amazonaws.com/123456789012/paybridge-test-retry-cambio';
const NIF = 'https://sqs.eu-north-1.amazonaws.com/123456789012/paybridge-test-retry-nif';
const queue = () => new SqsRetryQueue(new SQSClient({ region: 'eu-north-1' }), { cambio: CAMBIO, nif: NIF });

describe('SqsRetryQueue', () => {
  afterEach(() => sqs.reset());

  it("sends to the message's own system's queue, with the delay in whole seconds", async () => {
    sqs.on(SendMessageCommand).resolves({ MessageId: 'm1' });
    await queue().send({ pk: 'cambio#default#c1', system: 'cambio', reason: 'rate_limited' }, 4.2);
    await queue().send({ pk: 'nif#default#n1', system: 'nif', reason: 'queued' }, 0);
    const inputs = sqs.commandCalls(SendMessageCommand).map((c) => c.args[0].input);
    expect(inputs[0]).toEqual({ QueueUrl: CAMBIO, MessageBody: '{"pk":"cambio#default#c1","system":"cambio","reason":"rate_limited"}', DelaySeconds: 5 });
    expect(inputs[1]?.QueueUrl).toBe(NIF);
  });

  it('refuses a system whose queue this function was not given', async () => {
    await expect(queue().send({ pk: 'brp#default#b', system: 'brp', reason: 'x' }, 0)).rejects.toThrow(/no retry queue is configured for brp/);
  });

  it.each([
    [-3, 0],
    [0, 0],
    [900, 900],
    [3_600, 900],
  ])('clamps DelaySeconds %d to %d (SQS allows 0..900)', async (delay, expected) => {
    sqs.on(SendMessageCommand).resolves({});
    await queue().send({ pk: 'cambio#d#p', system: 'cambio', reason: 'r' }, delay);
    expect(sqs.commandCalls(SendMessageCommand)[0]?.args[0].input.DelaySeconds).toBe(expected);
  });

  it('lets a failed send surface (the engine logs it and the sweep recovers)', async () => {
    sqs.on(SendMessageCommand).rejects(new Error('throttled'));
    await expect(queue().send({ pk: 'cambio#d#p', system: 'cambio', reason: 'r' }, 0)).rejects.toThrow('throttled');
  });

  it('reports the visible depth of a queue (the sweep uses it to tell a backlog from a lost message)', async () => {
    sqs.on(GetQueueAttributesCommand).resolves({ Attributes: { ApproximateNumberOfMessages: '42' } });
    expect(await queue().depth('nif')).toBe(42);
  });

  it('parses messages, derives the system of older ones, and refuses ones without a record key', () => {
    expect(parseRetryMessage('{"pk":"a#b#c","reason":"sweep"}')).toEqual({ pk: 'a#b#c', system: 'a', reason: 'sweep' });
    expect(parseRetryMessage('{"pk":"a#b#c","system":"a","reason":"x","fence":{"id":"f","n":3},"now":true}')).toEqual({ pk: 'a#b#c', system: 'a', reason: 'x', fence: { id: 'f', n: 3 }, now: true });
    expect(() => parseRetryMessage('{"reason":"x"}')).toThrow(/without a record key/);
    expect(() => parseRetryMessage('not json')).toThrow();
  });

  it('carries the record with its fence while small, and only its key when large', () => {
    const rec = { pk: 'cambio#default#c', system: 'cambio', version: 2, fence: { id: 'f', n: 1 }, request: {} } as unknown as PaymentRecord;
    expect(retryMessage(rec, 'queued')).toMatchObject({ pk: rec.pk, fence: { id: 'f', n: 1 }, record: rec });
    const big = { ...rec, request: { blob: 'x'.repeat(SNAPSHOT_LIMIT_BYTES) } } as PaymentRecord;
    const m = retryMessage(big, 'queued');
    expect(m.record).toBeUndefined();
    expect(m.fence).toEqual({ id: 'f', n: 1 });
  });
});
