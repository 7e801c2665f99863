import { createHmac, timingSafeEqual } from 'node:crypto';
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

/**
 * The keys that authenticate retry messages (RETRY_MESSAGE_KEY, issue 20 item 4): the first signs, every
 * one verifies, so a key can be rotated without dropping the messages already queued.
 */
export interface MessageKeys {
  sign: string;
  verify: readonly string[];
}

/** Shorter keys could be found by trying them; `openssl rand -hex 32` gives 64 characters. */
export const MIN_MESSAGE_KEY_LENGTH = 32;

/** RETRY_MESSAGE_KEY: one key, or several separated by spaces (rotation: the first signs, all verify). */
export function parseMessageKeys(text: string): MessageKeys {
  const keys = text.trim().split(/\s+/).filter(Boolean);
  const [first] = keys;
  if (first === undefined) throw new Error('RETRY_MESSAGE_KEY is empty');
  if (keys.some((k) => k.length < MIN_MESSAGE_KEY_LENGTH)) throw new Error(`RETRY_MESSAGE_KEY: every key must be at least ${MIN_MESSAGE_KEY_LENGTH} characters (e.g. openssl rand -hex 32)`);
  return { sign: first, verify: keys };
}

/** Why a message was refused before anything in it was read. */
export class UnauthenticatedMessageError extends Error {
  override readonly name = 'UnauthenticatedMessageError';
}

/**
 * The MAC rides at the end of the body, as its last member, so the body stays one JSON object (a
 * dead-letter queue shows it as before) and the MAC is computed over the exact bytes before it:
 * nothing is parsed, re-serialised or canonicalised before it is checked.
 */
const MAC_TAIL = /,"mac":"([0-9a-f]{64})"\}$/;

function mac(key: string, text: string): Buffer {
  return createHmac('sha256', key).update(text, 'utf8').digest();
}

/** The body a queue adapter sends: the message as JSON with an HMAC-SHA256 under the signing key. */
export function encodeRetryMessage(message: RetryMessage, keys: MessageKeys): string {
  const text = JSON.stringify(message);
  return `${text.slice(0, -1)},"mac":"${mac(keys.sign, text).toString('hex')}"}`;
}

/**
 * The message a queue delivered, once its MAC verifies under one of the keys: checked before anything
 * else, so a message made up by anyone who may send to the queue (sqs:SendMessage) is never read, and
 * its record copy and fence never trusted. Throws UnauthenticatedMessageError otherwise.
 */
export function parseRetryMessage(body: string, keys: MessageKeys): RetryMessage {
  const m = MAC_TAIL.exec(body);
  if (!m) throw new UnauthenticatedMessageError('retry message without a MAC (RETRY_MESSAGE_KEY): not read');
  const text = `${body.slice(0, m.index)}}`;
  const given = Buffer.from(m[1] as string, 'hex');
  // Every key is tried, whichever matched, so the time taken does not tell which one did.
  let ok = false;
  for (const key of keys.verify) if (timingSafeEqual(mac(key, text), given)) ok = true;
  if (!ok) throw new UnauthenticatedMessageError('retry message whose MAC no RETRY_MESSAGE_KEY verifies: not read');
  return retryMessageFields(JSON.parse(text));
}

/**
 * The fields of a retry message, checked for shape only: for messages whose origin is known (verified
 * above, or an operator's through the local hooks, whose record copy is dropped).
 */
export function retryMessageFields(value: unknown): RetryMessage {
  const parsed = (value && typeof value === 'object' ? value : {}) as Partial<RetryMessage>;
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
