import type { Context, SQSEvent } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { makeHandler } from '../../../functions/retry-worker.js';
import type { AppDeps } from '../../../shared/deps.js';
import { createLogger } from '../../../shared/log.js';
import { memoryMetrics } from '../../../shared/metrics.js';
import { encodeRetryMessage, parseMessageKeys } from '../../../shared/queue/port.js';

const KEYS = parseMessageKeys('w'.repeat(64));
/** A message as the stack's queues send it: signed (issue 20 item 4). */
const signed = (pk: string) => encodeRetryMessage({ pk, system: pk.split('#')[0] as string, reason: 'x' }, KEYS);

const ctx = { awsRequestId: 'req-1', getRemainingTimeInMillis: () => 60_000 } as unknown as Context;
const event = (...bodies: string[]): SQSEvent => ({ Records: bodies.map((body, i) => ({ messageId: `m${i}`, body })) }) as unknown as SQSEvent;

function deps(getMany: (pks: readonly string[]) => Promise<Map<string, unknown>>): AppDeps {
  const module = { name: 'cambio', ambiguity: 'resend', maxPerSecond: () => 10, parse: () => undefined, routeKey: () => undefined, post: async () => ({ type: 'posted' }), publicRequest: (r: unknown) => r };
  return { store: { getMany }, log: createLogger({}, 'silent'), metrics: memoryMetrics(), clock: Date.now, messageKeys: KEYS, systems: (n: string) => (n === 'cambio' ? module : undefined) } as unknown as AppDeps;
}

describe('retry worker handler', () => {
  it('acknowledges settled and missing records, reporting nothing', async () => {
    const handler = makeHandler(async () => deps(async () => new Map([['cambio#default#done', { pk: 'cambio#default#done', system: 'cambio', status: 'posted', correlationId: 'x' }]])), 'cambio');
    const out = await handler(event(signed('cambio#default#done'), signed('cambio#default#gone')), ctx);
    expect(out).toEqual({ batchItemFailures: [] });
  });

  it('reports unreadable and unsigned messages and, when the store is unreachable, every message: SQS redelivers them, then dead-letters', async () => {
    const ok = makeHandler(async () => deps(async () => new Map()), 'cambio');
    expect((await ok(event(signed('cambio#default#a'), 'garbage', signed('nif#default#a'), '{"pk":"cambio#default#b","reason":"x"}'), ctx)).batchItemFailures.map((f) => f.itemIdentifier)).toEqual(['m1', 'm2', 'm3']);
    const down = makeHandler(async () => deps(async () => Promise.reject(new Error('DynamoDB unavailable'))), 'cambio');
    const out = await down(event(signed('cambio#default#a'), signed('cambio#default#b')), ctx);
    expect(out.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(['m0', 'm1']);
  });
});
