import middy from '@middy/core';
import type { Context, ScheduledEvent, SQSEvent } from 'aws-lambda';
import * as z from 'zod';
import { awsDeps, type AppDeps } from '../shared/deps.js';
import { Deliverer } from '../shared/events/deliver.js';
import { PENDING_SHARDS, pendingKey, type OutboxRecord } from '../shared/events/model.js';
import { EventRelay, recordsPointedAt } from '../shared/events/relay.js';
import { configuredCallers, eventsRuntime } from '../shared/events/runtime.js';
import type { EventStore } from '../shared/events/store.js';
import { SYSTEM_NAMES } from '../shared/config.js';
import { systemOfPk } from '../shared/core/types.js';
import { logInvocation } from '../shared/log.js';
import { dynamoTable } from '../shared/store/dynamo.js';

/**
 * What the pipe puts on the bus for each new event (shared/aws/stack.ts, EventsPipe's InputTemplate): the
 * event's own fields from the record's stream image, every value a string. Nothing of the request, and no
 * record key: `key` is the payment's name in its events (`eventSubjectOf`), never a key holding the
 * personId; `eventsKey` and `at` are where the record's pending mark sits in events-index.
 */
export interface BusDetail {
  id: string;
  type: string;
  system: string;
  key: string;
  revision: string;
  status: string;
  sequence: string;
  at: string;
  eventsKey: string;
}

const PENDING_PARTITIONS = Array.from({ length: PENDING_SHARDS }, (_, s) => pendingKey(s)) as [string, ...string[]];

/** The part of a bus message the function acts on: which pending mark, and which event of the record there. */
const busPointer = z.object({
  detail: z.object({
    id: z.string().min(1).max(100),
    eventsKey: z.enum(PENDING_PARTITIONS),
    at: z.string().regex(/^\d{1,15}$/).transform(Number),
  }),
});

/**
 * A key DynamoDB reads: at most 2048 bytes of UTF-8 (not characters), and valid UTF-8 at all (no lone
 * surrogate). DynamoDB answers any other with a ValidationException, which would fail the whole batch,
 * the honest messages in it too, five receives running and then into the DLQ.
 */
const readableKey = (pk: string) => pk.isWellFormed() && Buffer.byteLength(pk, 'utf8') <= 2048;

/** A message put on the queue before the bus stopped carrying the record key (a deploy does not drain the queue). */
const legacyPointer = z.object({
  detail: z.object({ pk: z.string().refine((pk) => readableKey(pk) && (SYSTEM_NAMES as readonly string[]).includes(systemOfPk(pk))) }),
});

/** The records a bus message is about, read now: by the pending mark it names, or by the key an older message named. */
async function recordsOf(body: string, deps: AppDeps, events: EventStore): Promise<OutboxRecord[] | undefined> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return undefined;
  }
  const pointer = busPointer.safeParse(parsed);
  if (pointer.success) return recordsPointedAt(events, pointer.data.detail);
  const legacy = legacyPointer.safeParse(parsed);
  if (legacy.success) {
    const record = (await deps.store.get(legacy.data.detail.pk)) as OutboxRecord | undefined;
    return record ? [record] : [];
  }
  return undefined;
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
        // The message only points at a record's pending event: what is published is what that record holds
        // pending (its own stamped events, the reference read now), never the message's fields. Whoever
        // may send to the queue can make the function look at a record, not report anything it did not.
        const records = await recordsOf(message.body, deps, rt.store);
        if (records === undefined) {
          deps.log.warn('event message naming no pending event: dropped', { messageId: message.messageId });
          continue;
        }
        for (const record of records) {
          if (!record.eventsKey) continue; // handed on already (another message of the same record, or the minute run)
          (await relay.handOn(record)).forEach((id) => touched.add(id));
        }
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
