import { randomUUID } from 'node:crypto';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import type { RetryMessage, RetryQueue } from './port.js';

export interface LocalQueueOptions {
  /** Like the SQS queue's VisibilityTimeout: a message reported as failed comes back after this. */
  visibilityTimeoutMs: number;
  /** Like the redrive policy: after this many receives a failing message moves to the dead-letter list. */
  maxReceiveCount: number;
  batchSize: number;
  /** Batches handled at once, like Lambda's concurrency for an SQS event source. */
  concurrency: number;
}

interface Pending {
  id: string;
  body: string;
  receiveCount: number;
  sentAt: number;
}

export type BatchConsumer = (event: SQSEvent) => Promise<SQSBatchResponse | void>;

/**
 * An in-process stand-in for SQS plus Lambda's event source mapping, for `npm start` and tests:
 * integer-second delays as SQS has them, partial batch failures (ReportBatchItemFailures), a
 * visibility timeout and a dead-letter list after `maxReceiveCount` receives. Nothing is persisted:
 * the record store is the source of truth and the sweep re-enqueues whatever was in flight.
 */
export class LocalRetryQueue implements RetryQueue {
  readonly deadLetters: { body: string; receiveCount: number }[] = [];
  private readonly ready: Pending[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private consumer: BatchConsumer | undefined;
  private running = 0;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  sent = 0;

  constructor(private readonly options: LocalQueueOptions = { visibilityTimeoutMs: 30_000, maxReceiveCount: 5, batchSize: 10, concurrency: 4 }) {}

  setConsumer(consumer: BatchConsumer): void {
    this.consumer = consumer;
    this.pump();
  }

  async send(message: RetryMessage, delaySeconds: number): Promise<void> {
    if (this.closed) throw new Error('local retry queue is closed');
    this.sent++;
    const pending: Pending = { id: randomUUID(), body: JSON.stringify(message), receiveCount: 0, sentAt: Date.now() };
    this.later(Math.max(0, Math.min(900, Math.ceil(delaySeconds))) * 1000, pending);
  }

  /** Messages waiting for their delay or visibility timeout, plus those ready and in flight. */
  get depth(): number {
    return this.ready.length + this.timers.size + this.running;
  }

  private later(ms: number, pending: Pending): void {
    if (ms <= 0) {
      this.ready.push(pending);
      this.pump();
      return;
    }
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (this.closed) return;
      this.ready.push(pending);
      this.pump();
    }, ms);
    this.timers.add(timer);
  }

  private pump(): void {
    while (this.consumer && !this.closed && this.running < this.options.concurrency && this.ready.length > 0) {
      const batch = this.ready.splice(0, this.options.batchSize);
      this.running++;
      void this.deliver(this.consumer, batch).finally(() => {
        this.running--;
        this.pump();
        if (this.depth === 0) this.idleWaiters.splice(0).forEach((resolve) => resolve());
      });
    }
  }

  private async deliver(consumer: BatchConsumer, batch: Pending[]): Promise<void> {
    for (const m of batch) m.receiveCount++;
    const event: SQSEvent = { Records: batch.map(toSqsRecord) };
    let failed: Set<string>;
    try {
      const response = await consumer(event);
      failed = new Set((response?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
    } catch {
      failed = new Set(batch.map((m) => m.id)); // a thrown handler fails the whole batch, as in Lambda
    }
    for (const m of batch) {
      if (!failed.has(m.id)) continue;
      if (m.receiveCount >= this.options.maxReceiveCount) this.deadLetters.push({ body: m.body, receiveCount: m.receiveCount });
      else this.later(this.options.visibilityTimeoutMs, m);
    }
  }

  /** Moves every dead letter back onto the queue with a fresh receive count (`paybridge redrive`). */
  redriveDeadLetters(): number {
    const moved = this.deadLetters.splice(0);
    for (const m of moved) this.later(0, { id: randomUUID(), body: m.body, receiveCount: 0, sentAt: Date.now() });
    return moved.length;
  }

  /** Resolves when nothing is waiting or in flight (tests), or after `timeoutMs`. */
  async idle(timeoutMs: number): Promise<boolean> {
    if (this.depth === 0) return true;
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.ready.length = 0;
  }
}

function toSqsRecord(m: Pending): SQSRecord {
  return {
    messageId: m.id,
    receiptHandle: m.id,
    body: m.body,
    attributes: {
      ApproximateReceiveCount: String(m.receiveCount),
      SentTimestamp: String(m.sentAt),
      SenderId: 'local',
      ApproximateFirstReceiveTimestamp: String(Date.now()),
    },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:local:000000000000:paybridge-retry',
    awsRegion: 'local',
  };
}
