import middy from '@middy/core';
import type { Context, ScheduledEvent, SQSEvent } from 'aws-lambda';
import { awsDeps, type AppDeps } from '../shared/deps.js';
import { Deliverer } from '../shared/events/deliver.js';
import type { OutboxRecord } from '../shared/events/model.js';
import { EventRelay } from '../shared/events/relay.js';
import { configuredCallers, eventsRuntime } from '../shared/events/runtime.js';
import { SYSTEM_NAMES } from '../shared/config.js';
import { systemOfPk } from '../shared/core/types.js';
import { logInvocation } from '../shared/log.js';
import { dynamoTable } from '../shared/store/dynamo.js';

/**
 * What the pipe puts on the bus for each new event (serverless.yml, EventsPipe's InputTemplate): the
 * event's own fields from the record's stream image, nothing of the request (no personal data).
 */
export interface BusDetail {
  id: string;
  type: string;
  pk: string;
  system: string;
  key: string;
  revision: string;
  status: string;
  sequence: string;
  at: string;
  previousId?: string;
  caller?: string;
  statusUrl?: string;
}

/** The record key a bus message names, if it names one of a payment system's records. */
function recordKeyOf(body: string): string | undefined {
  try {
    const pk = (JSON.parse(body) as { detail?: Partial<BusDetail> }).detail?.pk;
    return typeof pk === 'string' && pk.length <= 2048 && (SYSTEM_NAMES as readonly string[]).includes(systemOfPk(pk)) ? pk : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Events out in AWS (issue 21): the bus's rule feeds this function through a queue. Each message is one
 * event: it is kept, given a delivery per endpoint of its caller, and the record's pending mark is cleared;
 * then (and on the one-minute schedule, for retries) every endpoint's due deliveries are sent, endpoints
 * side by side. Idempotent throughout: a message delivered twice makes nothing twice.
 */
export const makeHandler = (getDeps: () => Promise<AppDeps>) =>
  middy<SQSEvent | ScheduledEvent, void, Error, Context>().handler(async (event, context) => {
  const deps = await getDeps();
  const rt = eventsRuntime(deps);
  const until = Date.now() + context.getRemainingTimeInMillis() - 2_000;
  const relay = new EventRelay(rt.store, { log: deps.log });
  const deliverer = new Deliverer(rt.store, { log: deps.log, policy: rt.policy, callers: () => configuredCallers(deps) });
  const touched = new Set<string>();
  try {
    if ('Records' in event) {
      for (const message of event.Records) {
        // The message only says which record wrote an event: what is published is what that record holds
        // pending (its own stamped events, the reference read now), never the message's fields. Whoever
        // may send to the queue can make the function look at a record, not report anything it did not.
        const pk = recordKeyOf(message.body);
        if (pk === undefined) {
          deps.log.warn('event message without a record key: dropped', { messageId: message.messageId });
          continue;
        }
        const record = (await deps.store.get(pk)) as OutboxRecord | undefined;
        if (!record?.eventsKey) continue; // handed on already (another message of the same record, or the minute run)
        (await relay.handOn(record)).forEach((id) => touched.add(id));
      }
      await deliverer.deliverDue(until, [...touched]);
    } else {
      // The backstop of the stream: an event still pending five minutes after its write (its stream record
      // dead-lettered by the pipe, or its message by the queue) is handed on from the record itself.
      await relay.drain(Date.now() - 300_000);
      await deliverer.deliverDue(until);
    }
  } finally {
    await deliverer.close();
  }
  });

export const handler = makeHandler(awsDeps({ table: dynamoTable })).use(logInvocation());
