import type { Fence, PaymentRecord } from '../core/types.js';
import { systemOfPk } from '../core/types.js';

/**
 * A message on a system's retry queue. It names the record and usually carries what the attempt needs
 * (the record as it was written, and the fence that allows one attempt), so the worker reads nothing
 * before it sends. The record stays the truth: a message whose fence was consumed is dropped.
 */
export interface RetryMessage {
  pk: string;
  system: string;
  reason: string;
  fence?: Fence;
  /** The record as written with `fence` (omitted when large: the worker reads it). */
  record?: PaymentRecord;
  /** Attempt now even if the record is not due yet: a probe of a failing system, or a wake-up after it recovered. */
  now?: boolean;
}

export interface RetryQueue {
  /** Sends one message to its system's queue, visible after `delaySeconds` (0..900). */
  send(message: RetryMessage, delaySeconds: number): Promise<void>;
  /** Messages waiting on a system's queue (visible ones), when the queue can tell. */
  depth?(system: string): Promise<number | undefined>;
}

/**
 * How each retry worker's SQS event source mapping hands out messages (shared/aws/stack.ts), and how the
 * local queue does the same: batches of up to 100, gathered for up to a second. One slot reservation and
 * one fence write serve a whole batch (core/worker.ts), so larger batches cost fewer of both per payment.
 */
export const WORKER_BATCH = { size: 100, windowSeconds: 1 } as const;

/** A snapshot travels with the message while the message stays far below SQS's 256 KB. */
export const SNAPSHOT_LIMIT_BYTES = 64 * 1024;

export function retryMessage(record: PaymentRecord, reason: string, extra: Partial<RetryMessage> = {}): RetryMessage {
  const message: RetryMessage = { pk: record.pk, system: record.system, reason, ...(record.fence ? { fence: record.fence } : {}), ...extra };
  const withRecord = { ...message, record };
  return Buffer.byteLength(JSON.stringify(withRecord), 'utf8') <= SNAPSHOT_LIMIT_BYTES ? withRecord : message;
}

export function parseRetryMessage(body: string): RetryMessage {
  const parsed = JSON.parse(body) as Partial<RetryMessage>;
  if (typeof parsed.pk !== 'string' || !parsed.pk.includes('#')) throw new Error('retry message without a record key');
  const fence = parsed.fence && typeof parsed.fence.id === 'string' && Number.isInteger(parsed.fence.n) ? parsed.fence : undefined;
  const record = parsed.record && parsed.record.pk === parsed.pk && typeof parsed.record.version === 'number' ? parsed.record : undefined;
  return {
    pk: parsed.pk,
    // Messages from before per-system queues named only the record.
    system: typeof parsed.system === 'string' ? parsed.system : systemOfPk(parsed.pk),
    reason: typeof parsed.reason === 'string' ? parsed.reason : 'unspecified',
    ...(fence ? { fence } : {}),
    ...(record ? { record } : {}),
    ...(parsed.now === true ? { now: true } : {}),
  };
}

/**
 * The queue of a function that sends no messages (the read routes, whose roles grant no SQS): a send is
 * refused as SqsRetryQueue refuses one for a system whose queue it was not given.
 */
export const NO_QUEUE: RetryQueue = {
  send: (message) => Promise.reject(new Error(`no retry queue is configured for ${message.system} in this function: it sends no messages`)),
};
