import { readFileSync } from 'node:fs';
import type { APIGatewayProxyEvent, ScheduledEvent, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeHandler as cambioPaymentNotice } from '../../functions/cambio-payment-notice.js';
import { makeHandler as getPayment } from '../../functions/get-payment.js';
import { makeHandler as retryWorker } from '../../functions/retry-worker.js';
import { makeHandler as sweep } from '../../functions/sweep.js';
import { lambdaContext } from '../../shared/local/server.js';
import type { Stack } from '../../shared/local/stack.js';
import { testStack } from '../helpers/stack.js';

const fixture = <T>(name: string): T => JSON.parse(readFileSync(new URL(`../../events/${name}`, import.meta.url), 'utf8')) as T;

describe('the event fixtures in events/ drive the Lambda handlers as AWS would', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await testStack();
  });
  afterAll(async () => {
    await stack?.close();
  });
  const getDeps = async () => stack.deps;

  it('API Gateway: payment notice, then its status', async () => {
    const posted = await cambioPaymentNotice(getDeps)(fixture<APIGatewayProxyEvent>('cambio-payment-notice.json'), lambdaContext('cambioPaymentNotice', 'r1'));
    expect(posted.statusCode).toBe(201);
    expect(JSON.parse(posted.body)).toMatchObject({ key: 'event-fixture-1', status: 'posted' });
    const status = await getPayment(getDeps)(fixture<APIGatewayProxyEvent>('get-payment.json'), lambdaContext('getPayment', 'r2'));
    expect(status.statusCode).toBe(200);
    expect(JSON.parse(status.body).status).toBe('posted');
  });

  it('SQS: a message for a settled record is acknowledged', async () => {
    const out = await retryWorker(getDeps)(fixture<SQSEvent>('retry-message.json'), lambdaContext('retryWorker', 'r3'));
    expect(out).toEqual({ batchItemFailures: [] });
  });

  it('EventBridge: the sweep runs and finds nothing overdue', async () => {
    expect(await sweep(getDeps)(fixture<ScheduledEvent>('sweep.json'), lambdaContext('sweep', 'r4'))).toEqual({ enqueued: 0, heldOverAnHour: 0 });
  });
});
