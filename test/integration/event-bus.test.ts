import { randomUUID } from 'node:crypto';
import { marshall } from '@aws-sdk/util-dynamodb';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeHandler } from '../../functions/event-delivery.js';
import { slsResources } from '../../shared/aws/stack.js';
import { recordPk } from '../../shared/core/types.js';
import { lambdaContext } from '../../shared/local/server.js';
import type { Stack } from '../../shared/local/stack.js';
import { derivedExternalId } from '../../shared/systems/nif/index.js';
import { pipeInput, pipeTakes, streamTap, type StreamRecord } from '../helpers/events-pipe.js';
import { stackConfig } from '../helpers/stack-config.js';
import { call, eventually, testStack } from '../helpers/stack.js';

/** Only the service and stage name the events resources; the rest as serverless.yml's defaults. */
const CFG = stackConfig('unit');
/** The events pipe's InputTemplate as deployed (shared/aws/stack.ts). */
const PIPE = (slsResources(CFG).Resources as Record<string, any>).EventsPipe.Properties;
const INPUT_TEMPLATE = String(PIPE.TargetParameters.InputTemplate);
/** The events pipe's filter as deployed: which stream records it takes at all. */
const PIPE_FILTERS = (PIPE.SourceParameters.FilterCriteria.Filters as { Pattern: string }[]).map((f) => JSON.parse(f.Pattern) as unknown);

/** The SQS message EventsQueue hands the delivery function for one bus event (the rule's target is the whole event). */
const sqsEvent = (detail: unknown) =>
  ({
    Records: [
      {
        messageId: randomUUID(),
        receiptHandle: randomUUID(),
        body: JSON.stringify({ version: '0', id: randomUUID(), 'detail-type': 'paybridge.payment-event', source: 'paybridge', account: '000000000000', time: new Date().toISOString(), region: 'eu-north-1', resources: [], detail }),
        attributes: { ApproximateReceiveCount: '1' },
        messageAttributes: {},
        eventSource: 'aws:sqs',
        awsRegion: 'eu-north-1',
        md5OfBody: '',
        eventSourceARN: 'arn:aws:sqs:eu-north-1:000000000000:events',
      },
    ],
  }) as never;

/**
 * Events out in AWS (issue 21): stream -> pipe (InputTemplate) -> the stage's bus, which other consumers
 * subscribe to -> EventsQueue -> functions/event-delivery.ts. Here the stream is a tap on the local stack's
 * table, the pipe is its InputTemplate applied to each new image, and the delivery function is invoked
 * with the message the queue would hand it. The local relay is stopped, so what is handed on is what the
 * delivery function did.
 */
describe('the events bus message (issue 21)', () => {
  let tap: Awaited<ReturnType<typeof streamTap>>;
  let stack: Stack;
  beforeAll(async () => {
    tap = await streamTap();
    stack = await testStack({ dynamoEndpoint: tap.endpoint, env: { API_KEYS: 'pos=key-of-pos' } });
    await stack.events.relay.close();
  });
  afterAll(async () => {
    await stack?.close();
    await tap?.close();
  });

  /** A first-generation NIF payment with neither externalId nor Idempotency-Key: keyed by its natural key. */
  async function naturalKeyPayment(): Promise<{ personId: string; natural: string; stamped: StreamRecord }> {
    const personId = String(1_000_000 + Math.floor(Math.random() * 8_000_000));
    const body = {
      amount: '450', comment: 'Club membership', isFamilyMember: 'true', isPaid: 'false', orgId: '7896', paidDate: '2015-05-08',
      paidToOrgId: '4568', paymentCategory: 'Club membership', paymentTypeId: 0, periodFrom: '2015-05-08', periodTo: '2015-06-08', personId,
    };
    const sent = await call(stack, 'POST', '/v1/nif/membership/payments', body, { 'x-api-key': 'key-of-pos', ClubId: '4568' });
    expect([201, 202]).toContain(sent.status);
    const natural = `natural:${personId}:7896:0:2015-05-08:2015-06-08`;
    const pk = recordPk('nif-membership', '4568', `4568:${natural}`);
    const stamped = await eventually(async () => tap.records.find((r) => r.dynamodb.NewImage.pk?.S === pk && r.dynamodb.NewImage.status?.S === 'posted'));
    return { personId, natural, stamped };
  }

  it('holds no personId for a NIF payment keyed by its natural key: it names the payment by the ExternalId sent NIF', async () => {
    const { personId, natural, stamped } = await naturalKeyPayment();
    const detail = pipeInput(INPUT_TEMPLATE, stamped) as Record<string, string>;
    expect(JSON.stringify(detail)).not.toContain(personId);
    expect(detail).toMatchObject({ type: 'payment.posted', system: 'nif-membership', key: derivedExternalId('4568', natural), status: 'posted', sequence: '1' });
  }, 20_000);

  it('is enough for the delivery function to hand on the event, from the record it finds by the pending mark', async () => {
    const { personId, stamped } = await naturalKeyPayment();
    const pk = String(stamped.dynamodb.NewImage.pk?.S);
    const detail = pipeInput(INPUT_TEMPLATE, stamped) as Record<string, string>;
    expect(await stack.events.store.getEvent(String(detail.id))).toBeUndefined();
    await makeHandler(async () => stack.deps)(sqsEvent(detail), lambdaContext('eventDelivery', randomUUID(), 20_000) as never);
    const kept = await stack.events.store.getEvent(String(detail.id));
    expect(kept?.event).toMatchObject({ id: detail.id, type: 'payment.posted', data: { system: 'nif-membership', status: 'posted', externalId: detail.key } });
    expect(JSON.stringify(kept)).not.toContain(personId);
    expect(((await stack.deps.store.get(pk)) as { eventsKey?: string } | undefined)?.eventsKey).toBeUndefined();
  }, 20_000);

  it('still hands on an event from a message put on the queue before the bus stopped naming the record (detail.pk)', async () => {
    const key = `bus-${randomUUID().slice(0, 8)}`;
    const sent = await call(stack, 'POST', '/v1/cambio/payment-notices', { status: 'PAID', contactId: key, paymentType: 'CARD' }, { 'x-api-key': 'key-of-pos' });
    expect([201, 202]).toContain(sent.status);
    const pk = recordPk('cambio', 'default', key);
    const stamped = await eventually(async () => tap.records.find((r) => r.dynamodb.NewImage.pk?.S === pk && r.dynamodb.NewImage.status?.S === 'posted'));
    const image = stamped.dynamodb.NewImage as Record<string, any>;
    const last = image.lastEvent.M;
    // The detail as the pipe's template made it until then.
    const old = { id: last.id.S, type: last.type.S, pk, system: 'cambio', key, revision: last.revision.N, status: last.status.S, sequence: last.seq.N, at: last.at.N };
    await makeHandler(async () => stack.deps)(sqsEvent(old), lambdaContext('eventDelivery', randomUUID(), 20_000) as never);
    expect((await stack.events.store.getEvent(old.id))?.event).toMatchObject({ type: 'payment.posted', data: { system: 'cambio', key } });
  }, 20_000);

  it('hands on nothing for a message naming a pending mark with another event id, or a partition that is not one', async () => {
    const { stamped } = await naturalKeyPayment();
    const detail = pipeInput(INPUT_TEMPLATE, stamped) as Record<string, string>;
    const handler = makeHandler(async () => stack.deps);
    await handler(sqsEvent({ ...detail, id: 'evt_forged' }), lambdaContext('eventDelivery', randomUUID(), 20_000) as never);
    await handler(sqsEvent({ ...detail, eventsKey: 'events#pos' }), lambdaContext('eventDelivery', randomUUID(), 20_000) as never);
    expect(await stack.events.store.getEvent(String(detail.id))).toBeUndefined();
    expect(((await stack.deps.store.get(String(stamped.dynamodb.NewImage.pk?.S))) as { eventsKey?: string } | undefined)?.eventsKey).toBe(detail.eventsKey);
  }, 20_000);

  it('takes one stream record per event: the write that clears the pending mark is not put on the bus again', async () => {
    const { stamped } = await naturalKeyPayment();
    const pk = String(stamped.dynamodb.NewImage.pk?.S);
    expect(PIPE_FILTERS.some((f) => pipeTakes(f, stamped))).toBe(true);
    const detail = pipeInput(INPUT_TEMPLATE, stamped) as Record<string, string>;
    await makeHandler(async () => stack.deps)(sqsEvent(detail), lambdaContext('eventDelivery', randomUUID(), 20_000) as never);
    // The clear is an UpdateItem: the stream's record of it holds the whole item after it (NEW_IMAGE). Were the
    // pipe to take it, the bus would get the event a second time, with no pending mark to find it by.
    const cleared = (await stack.events.store.doc.send(new GetCommand({ TableName: stack.events.store.tableName, Key: { pk }, ConsistentRead: true }))).Item;
    expect(cleared?.eventsKey).toBeUndefined();
    const image = { eventName: 'MODIFY', eventSource: 'aws:dynamodb', dynamodb: { Keys: { pk: { S: pk } }, NewImage: marshall(cleared, { removeUndefinedValues: true }), StreamViewType: 'NEW_IMAGE' } };
    expect(PIPE_FILTERS.some((f) => pipeTakes(f, image))).toBe(false);
  }, 20_000);
});
