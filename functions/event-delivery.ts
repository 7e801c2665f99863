import middy from '@middy/core';
import type { Context, ScheduledEvent, SQSEvent } from 'aws-lambda';
import { awsDeps, type AppDeps } from '../shared/deps.js';
import { Deliverer } from '../shared/events/deliver.js';
import { NO_CALLER, referenceOf, type EventType, type PaymentEvent } from '../shared/events/model.js';
import { EventRelay } from '../shared/events/relay.js';
import { configuredCallers, eventsRuntime } from '../shared/events/runtime.js';
import type { Status } from '../shared/core/types.js';
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

/** The event as callers get it, from the bus detail; the downstream's reference read from the record now. */
export function eventFromDetail(d: BusDetail, reference: Record<string, string | number>): PaymentEvent {
  return {
    id: d.id,
    type: d.type as EventType,
    timestamp: new Date(Number(d.at)).toISOString(),
    data: {
      system: d.system,
      key: d.key,
      revision: Number(d.revision),
      status: d.status as Status,
      sequence: Number(d.sequence),
      statusUrl: `/v1/payments/${encodeURIComponent(d.system)}/${encodeURIComponent(d.key)}`,
      reference,
    },
  };
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
        const detail = (JSON.parse(message.body) as { detail: BusDetail }).detail;
        const record = await deps.store.get(detail.pk);
        const caller = record?.caller ?? NO_CALLER;
        const made = await relay.publish({
          event: eventFromDetail(detail, record ? referenceOf(record) : {}),
          caller,
          createdMs: Number(detail.at),
          ...(detail.previousId ? { previousId: detail.previousId } : {}),
        });
        made.forEach((id) => touched.add(id));
        await rt.store.clearPending(detail.pk, detail.id);
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
