import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { parseRetryMessage } from '../../../shared/queue/port.js';
import { SqsRetryQueue } from '../../../shared/queue/sqs.js';

const sqs = mockClient(SQSClient);
const URL = 'https://sqs.eu-north-1.amazonaws.com/123456789012/paybridge-test-retry';

describe('SqsRetryQueue', () => {
  afterEach(() => sqs.reset());

  it('sends the record key, never the payment, with the delay in whole seconds', async () => {
    sqs.on(SendMessageCommand).resolves({ MessageId: 'm1' });
    await new SqsRetryQueue(new SQSClient({ region: 'eu-north-1' }), URL).send({ pk: 'cambio#default#c1', reason: 'rate_limited' }, 4.2);
    const input = sqs.commandCalls(SendMessageCommand)[0]?.args[0].input;
    expect(input).toEqual({ QueueUrl: URL, MessageBody: '{"pk":"cambio#default#c1","reason":"rate_limited"}', DelaySeconds: 5 });
  });

  it.each([
    [-3, 0],
    [0, 0],
    [900, 900],
    [3_600, 900],
  ])('clamps DelaySeconds %d to %d (SQS allows 0..900)', async (delay, expected) => {
    sqs.on(SendMessageCommand).resolves({});
    await new SqsRetryQueue(new SQSClient({ region: 'eu-north-1' }), URL).send({ pk: 'p', reason: 'r' }, delay);
    expect(sqs.commandCalls(SendMessageCommand)[0]?.args[0].input.DelaySeconds).toBe(expected);
  });

  it('lets a failed send surface (the engine logs it and the sweep recovers)', async () => {
    sqs.on(SendMessageCommand).rejects(new Error('throttled'));
    await expect(new SqsRetryQueue(new SQSClient({ region: 'eu-north-1' }), URL).send({ pk: 'p', reason: 'r' }, 0)).rejects.toThrow('throttled');
  });

  it('parses messages and refuses ones without a record key', () => {
    expect(parseRetryMessage('{"pk":"a#b#c","reason":"sweep"}')).toEqual({ pk: 'a#b#c', reason: 'sweep' });
    expect(() => parseRetryMessage('{"reason":"x"}')).toThrow(/without a record key/);
    expect(() => parseRetryMessage('not json')).toThrow();
  });
});
