import { GetQueueAttributesCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { createHmac } from 'node:crypto';
import { encodeRetryMessage, parseMessageKeys, parseRetryMessage, retryMessage, retryMessageFields, SNAPSHOT_LIMIT_BYTES, UnauthenticatedMessageError } from '../../../shared/queue/port.js';
import { SqsRetryQueue } from '../../../shared/queue/sqs.js';
import type { PaymentRecord } from '../../../shared/core/types.js';

const sqs = mockClient(SQSClient);
const CAMBIO = 'https://sqs.eu-north-1.amazonaws.com/123456789012/paybridge-test-retry-cambio';
const NIF = 'https://sqs.eu-north-1.amazonaws.com/123456789012/paybridge-test-retry-nif';
const KEY = 'k'.repeat(32);
const OLD = 'o'.repeat(32);
const KEYS = parseMessageKeys(KEY);
const queue = () => new SqsRetryQueue(new SQSClient({ region: 'eu-north-1' }), { cambio: CAMBIO, nif: NIF }, KEYS);
/** What SendMessage carries for `json` under `key`: the JSON with an HMAC-SHA256 of exactly it as its last member. */
const signed = (json: string, key = KEY) => `${json.slice(0, -1)},"mac":"${createHmac('sha256', key).update(json).digest('hex')}"}`;

describe('SqsRetryQueue', () => {
  afterEach(() => sqs.reset());

  it("sends to the message's own system's queue, with the delay in whole seconds", async () => {
    sqs.on(SendMessageCommand).resolves({ MessageId: 'm1' });
    await queue().send({ pk: 'cambio#default#c1', system: 'cambio', reason: 'rate_limited' }, 4.2);
    await queue().send({ pk: 'nif#default#n1', system: 'nif', reason: 'queued' }, 0);
    const inputs = sqs.commandCalls(SendMessageCommand).map((c) => c.args[0].input);
    expect(inputs[0]).toEqual({ QueueUrl: CAMBIO, MessageBody: signed('{"pk":"cambio#default#c1","system":"cambio","reason":"rate_limited"}'), DelaySeconds: 5 });
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

  it('parses signed messages, derives the system of older ones, and refuses ones without a record key', () => {
    expect(parseRetryMessage(signed('{"pk":"a#b#c","reason":"sweep"}'), KEYS)).toEqual({ pk: 'a#b#c', system: 'a', reason: 'sweep' });
    expect(parseRetryMessage(signed('{"pk":"a#b#c","system":"a","reason":"x","fence":{"id":"f","n":3},"now":true}'), KEYS)).toEqual({ pk: 'a#b#c', system: 'a', reason: 'x', fence: { id: 'f', n: 3 }, now: true });
    expect(() => parseRetryMessage(signed('{"reason":"x"}'), KEYS)).toThrow(/without a record key/);
    expect(() => retryMessageFields('not an object')).toThrow(/without a record key/);
  });

  it('reads nothing of a message its MAC does not authenticate (issue 20 item 4)', () => {
    const body = encodeRetryMessage({ pk: 'nif#default#x', system: 'nif', reason: 'queued', fence: { id: 'f', n: 0 } }, KEYS);
    expect(parseRetryMessage(body, KEYS).fence).toEqual({ id: 'f', n: 0 });
    const cases = {
      unsigned: '{"pk":"nif#default#x","system":"nif","reason":"queued"}',
      'another key': encodeRetryMessage({ pk: 'nif#default#x', system: 'nif', reason: 'queued' }, parseMessageKeys('x'.repeat(32))),
      'a changed fence': body.replace('"n":0', '"n":1'),
      'a changed MAC': body.replace(/"mac":"(.)/, (_m, c: string) => `"mac":"${c === '0' ? '1' : '0'}`),
      'a member after the MAC': `${body.slice(0, -1)},"now":true}`,
      'not JSON': 'not json',
    };
    for (const [name, text] of Object.entries(cases)) expect(() => parseRetryMessage(text, KEYS), name).toThrow(UnauthenticatedMessageError);
  });

  it('rotation: the first key signs, every key verifies; short keys are refused', () => {
    const rotating = parseMessageKeys(`${KEY} ${OLD}`);
    expect(parseRetryMessage(signed('{"pk":"a#b#c","reason":"r"}', OLD), rotating).pk).toBe('a#b#c');
    expect(encodeRetryMessage({ pk: 'a#b#c', system: 'a', reason: 'r' }, rotating)).toBe(signed('{"pk":"a#b#c","system":"a","reason":"r"}', KEY));
    expect(() => parseMessageKeys('short')).toThrow(/at least 32/);
    expect(() => parseMessageKeys('  ')).toThrow(/empty/);
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
