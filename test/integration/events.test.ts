import { readFileSync } from 'node:fs';
import type { APIGatewayProxyEvent, ScheduledEvent, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeHandler as cambioPaymentNotice } from '../../functions/cambio-payment-notice.js';
import { makeHandler as brpSale } from '../../functions/brp-sale.js';
import { makeHandler as getPayment } from '../../functions/get-payment.js';
import { makeHandler as kontantanalysPut } from '../../functions/kontantanalys-put.js';
import { makeHandler as kontantanalysSync } from '../../functions/kontantanalys-sync.js';
import { makeHandler as nifMembershipPayment } from '../../functions/nif-membership-payment.js';
import { makeHandler as retryWorker } from '../../functions/retry-worker.js';
import { makeHandler as sweep } from '../../functions/sweep.js';
import { signQueueEvent } from '../../shared/aws/invoke-local.js';
import { lambdaContext } from '../../shared/local/server.js';
import type { Stack } from '../../shared/local/stack.js';
import { testStack, waitForStatus } from '../helpers/stack.js';

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
    // 201 when the first attempt is made in process; a busy machine queues it (202), and the queue posts it.
    expect([201, 202], posted.body).toContain(posted.statusCode);
    expect(JSON.parse(posted.body)).toMatchObject({ key: 'event-fixture-1', status: posted.statusCode === 201 ? 'posted' : 'retrying' });
    await waitForStatus(stack, 'cambio', 'event-fixture-1', ['posted']);
    const status = await getPayment(getDeps)(fixture<APIGatewayProxyEvent>('get-payment.json'), lambdaContext('getPayment', 'r2'));
    expect(status.statusCode).toBe(200);
    expect(JSON.parse(status.body).status).toBe('posted');
  });

  it.each([
    ['nif-membership-payment.json', nifMembershipPayment],
    ['brp-sale.json', brpSale],
    ['kontantanalys-put.json', kontantanalysPut],
  ] as const)('API Gateway: %s posts through its handler', async (file, make) => {
    const out = await make(getDeps)(fixture<APIGatewayProxyEvent>(file), lambdaContext(file, 'r'));
    // Posted in process (201), or queued on a busy machine (202) and posted by the queue's worker.
    expect([201, 202], out.body).toContain(out.statusCode);
    const { system, key } = JSON.parse(out.body) as { system: string; key: string };
    expect((await waitForStatus(stack, system, key, ['posted'])).status).toBe('posted');
  });

  it('EventBridge: the Kontantanalys run writes its summary', async () => {
    const summary = await kontantanalysSync(getDeps)(fixture<ScheduledEvent>('schedule.json'), lambdaContext('kontantanalysSync', 'r5'));
    expect(summary).toMatchObject({ failed: 0, pending: 0 });
  });

  it('an invocation with too little time left defers to the queue instead of sending', async () => {
    const event = fixture<APIGatewayProxyEvent>('cambio-payment-notice.json');
    event.body = JSON.stringify({ status: 'PAID', contactId: 'late-invocation', paymentType: 'CASH' });
    const context = { ...lambdaContext('cambioPaymentNotice', 'r6'), getRemainingTimeInMillis: () => 5_000 };
    const out = await cambioPaymentNotice(getDeps)(event, context);
    expect(out.statusCode).toBe(202);
    expect(JSON.parse(out.body)).toMatchObject({ status: 'retrying', attempts: 0 });
    expect(stack.cambio!.stats.applied['late-invocation']).toBeUndefined();
    await waitForStatus(stack, 'cambio', 'late-invocation', ['posted']);
    expect(stack.cambio!.stats.applied['late-invocation']).toBe(1);
  });

  it('SQS: a message for a settled record is acknowledged, once signed as the queue signs it; unsigned it is refused', async () => {
    const plain = fixture<SQSEvent>('retry-message.json');
    // What `serverless invoke local` does with the file against the local stack (shared/aws/invoke-local.ts).
    const signed = signQueueEvent(plain, stack.deps.config.env.RETRY_MESSAGE_KEY) as SQSEvent;
    expect(signed.Records[0]?.body).toMatch(/,"mac":"[0-9a-f]{64}"\}$/);
    expect(signQueueEvent(signed, stack.deps.config.env.RETRY_MESSAGE_KEY)).toEqual(signed);
    const out = await retryWorker(getDeps, 'cambio')(signed, lambdaContext('retryCambio', 'r3'));
    expect(out).toEqual({ batchItemFailures: [] });
    // As it arrives from anyone who may only send to the queue: never read (issue 20 item 4).
    const refused = await retryWorker(getDeps, 'cambio')(plain, lambdaContext('retryCambio', 'r3b'));
    expect(refused).toEqual({ batchItemFailures: [{ itemIdentifier: plain.Records[0]?.messageId }] });
  });

  it('EventBridge: the sweep runs and finds nothing overdue', async () => {
    expect(await sweep(getDeps)(fixture<ScheduledEvent>('schedule.json'), lambdaContext('sweep', 'r4'))).toEqual({ enqueued: 0, stranded: 0, probed: 0, heldOverAnHour: 0 });
  });
});
