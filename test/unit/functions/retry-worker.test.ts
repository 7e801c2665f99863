import type { Context, SQSEvent } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { makeHandler } from '../../../functions/retry-worker.js';
import type { AppDeps } from '../../../shared/deps.js';
import { createLogger } from '../../../shared/log.js';

const ctx = { awsRequestId: 'req-1', getRemainingTimeInMillis: () => 60_000 } as unknown as Context;
const event = (...bodies: string[]): SQSEvent =>
  ({ Records: bodies.map((body, i) => ({ messageId: `m${i}`, body })) }) as unknown as SQSEvent;

function deps(get: (pk: string) => Promise<unknown>): AppDeps {
  return { store: { get }, log: createLogger({}, 'silent'), clock: Date.now, systems: () => undefined } as unknown as AppDeps;
}

describe('retry worker handler', () => {
  it('acknowledges settled and missing records, reporting nothing', async () => {
    const handler = makeHandler(async () =>
      deps(async (pk) => (pk === 'cambio#default#done' ? { pk, system: 'cambio', status: 'posted', correlationId: 'x' } : undefined)),
    );
    const out = await handler(event('{"pk":"cambio#default#done","reason":"x"}', '{"pk":"cambio#default#gone","reason":"x"}'), ctx);
    expect(out).toEqual({ batchItemFailures: [] });
  });

  it('reports only the messages whose handling threw, so SQS retries those and finally dead-letters them', async () => {
    const handler = makeHandler(async () =>
      deps(async (pk) => {
        if (pk === 'boom') throw new Error('DynamoDB unavailable');
        return undefined;
      }),
    );
    const out = await handler(event('{"pk":"fine","reason":"x"}', '{"pk":"boom","reason":"x"}', 'garbage'), ctx);
    expect(out.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(['m1', 'm2']);
  });
});
