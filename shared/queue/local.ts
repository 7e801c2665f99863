import { randomUUID } from 'node:crypto';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { encodeRetryMessage, WORKER_BATCH, type MessageKeys, type RetryMessage, type RetryQueue } from './port.js';

export interface LocalQueueOptions {
  /** Like the SQS queue's VisibilityTimeout: a message reported as failed comes back after this. */
  visibilityTimeoutMs: number;
  /** Like the redrive policy: after this many receives a failing message moves to the dead-letter list. */
  maxReceiveCount: number;
  batchSize: number;
  /** Batches one consumer (one worker) handles at once. */
  concurrency: number;
  /**
   * The worker function's timeout: a batch still running after it counts as failed (redelivered after
   * the visibility timeout) and frees its slot, as Lambda ends a timed-out invocation. Its promise
   * may still resume later, like a frozen container: exactly what fencing must survive.
   */
  invocationTimeoutMs: number;
  /**
   * Like the event source mapping's MaximumBatchingWindowInSeconds: fewer than `batchSize` visible
   * messages wait for more up to this long (from the oldest) before a batch is handed out. 0: at once.
   */
  batchingWindowMs?: number;
}

export const DEFAULT_LOCAL_QUEUE: LocalQueueOptions = {
  visibilityTimeoutMs: 30_000,
  maxReceiveCount: 5,
  batchSize: WORKER_BATCH.size,
  batchingWindowMs: WORKER_BATCH.windowSeconds * 1000,
  concurrency: 4,
  invocationTimeoutMs: 60_000,
};

interface Pending {
  id: string;
  body: string;
  receiveCount: number;
  sentAt: number;
  /** When it last became visible (the batching window counts from the oldest). */
  visibleAt?: number;
}

export type BatchConsumer = (event: SQSEvent) => Promise<SQSBatchResponse | void>;

interface Consumer {
  handle: BatchConsumer;
  running: number;
}

/**
 * One system's queue and its event source mapping: integer-second delays as SQS has them, batches
 * handed to the least busy consumer (each consumer stands for one worker), partial batch failures
 * (ReportBatchItemFailures), a visibility timeout and a dead-letter list after `maxReceiveCount`.
 * Nothing is persisted: the records are the truth, and `npm start` re-enqueues them at boot.
 */
export class LocalQueue {
  readonly deadLetters: { body: string; receiveCount: number }[] = [];
  private readonly ready: Pending[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly consumers: Consumer[] = [];
  private inFlight = 0;
  private closed = false;
  private paused = false;
  private idleWaiters: (() => void)[] = [];
  sent = 0;

  constructor(
    readonly system: string,
    private readonly options: LocalQueueOptions,
  ) {}

  addConsumer(handle: BatchConsumer): void {
    this.consumers.push({ handle, running: 0 });
    this.pump();
  }

  send(body: string, delaySeconds: number): void {
    if (this.closed) throw new Error(`local retry queue for ${this.system} is closed`);
    this.sent++;
    this.later(Math.max(0, Math.min(900, Math.ceil(delaySeconds))) * 1000, { id: randomUUID(), body, receiveCount: 0, sentAt: Date.now() });
  }

  /**
   * Visible messages waiting for a consumer (what SQS reports as ApproximateNumberOfMessages). Those a
   * free worker's poller is gathering into its batch are received already, as with a batching window.
   */
  get visible(): number {
    if (!this.options.batchingWindowMs || this.paused || this.closed) return this.ready.length;
    const free = this.consumers.reduce((sum, c) => sum + Math.max(0, this.options.concurrency - c.running), 0);
    return Math.max(0, this.ready.length - free * this.options.batchSize);
  }

  /** Messages waiting for their delay or visibility timeout, plus those ready and in flight. */
  get depth(): number {
    return this.ready.length + this.timers.size + this.inFlight;
  }

  private later(ms: number, pending: Pending): void {
    if (ms <= 0) {
      this.ready.push({ ...pending, visibleAt: Date.now() });
      this.pump();
      return;
    }
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (this.closed) return;
      this.ready.push({ ...pending, visibleAt: Date.now() });
      this.pump();
    }, ms);
    this.timers.add(timer);
  }

  /** Stops handing out batches (a shutdown): messages stay, batches in flight finish. */
  pause(): void {
    this.paused = true;
  }

  /** Batches handed out and not yet finished. */
  get running(): number {
    return this.inFlight;
  }

  /** The timer that hands out a gathering batch when its window ends. */
  private gathering: NodeJS.Timeout | undefined;

  private pump(): void {
    while (!this.closed && !this.paused && this.ready.length > 0) {
      const free = this.consumers.filter((c) => c.running < this.options.concurrency).sort((a, b) => a.running - b.running)[0];
      if (!free) return;
      const window = this.options.batchingWindowMs ?? 0;
      const waited = Date.now() - (this.ready[0]?.visibleAt ?? 0);
      if (this.ready.length < this.options.batchSize && waited < window) {
        if (!this.gathering) {
          this.gathering = setTimeout(() => {
            this.gathering = undefined;
            this.pump();
          }, window - waited);
        }
        return;
      }
      const batch = this.ready.splice(0, this.options.batchSize);
      free.running++;
      this.inFlight += batch.length;
      void this.deliver(free, batch).finally(() => {
        free.running--;
        this.inFlight -= batch.length;
        this.pump();
        if (this.depth === 0) this.idleWaiters.splice(0).forEach((resolve) => resolve());
      });
    }
  }

  private async deliver(consumer: Consumer, batch: Pending[]): Promise<void> {
    for (const m of batch) m.receiveCount++;
    const event: SQSEvent = { Records: batch.map((m) => toSqsRecord(m, this.system)) };
    let failed: Set<string>;
    let timer: NodeJS.Timeout | undefined;
    try {
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('invocation timed out')), this.options.invocationTimeoutMs);
      });
      const response = await Promise.race([consumer.handle(event), timedOut]);
      failed = new Set((response?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
    } catch {
      failed = new Set(batch.map((m) => m.id)); // a thrown or timed-out handler fails the whole batch, as in Lambda
    } finally {
      clearTimeout(timer);
    }
    for (const m of batch) {
      if (!failed.has(m.id)) continue;
      if (m.receiveCount >= this.options.maxReceiveCount) this.deadLetters.push({ body: m.body, receiveCount: m.receiveCount });
      else this.later(this.options.visibilityTimeoutMs, m);
    }
  }

  redriveDeadLetters(): number {
    const moved = this.deadLetters.splice(0);
    for (const m of moved) this.later(0, { id: randomUUID(), body: m.body, receiveCount: 0, sentAt: Date.now() });
    return moved.length;
  }

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
    clearTimeout(this.gathering);
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.ready.length = 0;
  }
}

/**
 * An in-process stand-in for the per-system SQS queues plus Lambda's event source mappings, for
 * `npm start` and tests.
 */
export class LocalRetryQueue implements RetryQueue {
  private readonly queues = new Map<string, LocalQueue>();
  private readonly options: LocalQueueOptions;

  constructor(
    options: Partial<LocalQueueOptions> = {},
    /** Signs what this queue sends, as SqsRetryQueue does (the workers verify: shared/queue/port.ts). */
    private readonly keys?: MessageKeys,
  ) {
    this.options = { ...DEFAULT_LOCAL_QUEUE, ...options };
  }

  queue(system: string): LocalQueue {
    let q = this.queues.get(system);
    if (!q) {
      q = new LocalQueue(system, this.options);
      this.queues.set(system, q);
    }
    return q;
  }

  async send(message: RetryMessage, delaySeconds: number): Promise<void> {
    if (!this.keys) throw new Error('this local queue was made without message keys: it cannot send messages a worker accepts');
    this.queue(message.system).send(encodeRetryMessage(message, this.keys), delaySeconds);
  }

  /** One worker of `system`'s queue. */
  addConsumer(system: string, handle: BatchConsumer): void {
    this.queue(system).addConsumer(handle);
  }

  async deadLetterCount(): Promise<number> {
    return this.deadLetters.length;
  }

  async depth(system: string): Promise<number | undefined> {
    return this.queues.get(system)?.visible ?? 0;
  }

  get sent(): number {
    return [...this.queues.values()].reduce((sum, q) => sum + q.sent, 0);
  }

  get deadLetters(): { system: string; body: string; receiveCount: number }[] {
    return [...this.queues.values()].flatMap((q) => q.deadLetters.map((d) => ({ system: q.system, ...d })));
  }

  redriveDeadLetters(system?: string): number {
    let moved = 0;
    for (const q of this.queues.values()) if (!system || q.system === system) moved += q.redriveDeadLetters();
    return moved;
  }

  /** Resolves when every queue is empty (tests), or false after `timeoutMs`. */
  async idle(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    // A worker on one queue may enqueue on another: wait until all are empty at the same time.
    for (let round = 0; round < 100; round++) {
      const busy = [...this.queues.values()].filter((q) => q.depth > 0);
      if (busy.length === 0) return true;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      const results = await Promise.all(busy.map((q) => q.idle(left)));
      if (results.includes(false)) return false;
    }
    return false;
  }

  pause(): void {
    for (const q of this.queues.values()) q.pause();
  }

  /** Resolves once no batch is in flight on any queue, or false after `timeoutMs`. */
  async settled(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while ([...this.queues.values()].some((q) => q.running > 0)) {
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, 25));
    }
    return true;
  }

  close(): void {
    for (const q of this.queues.values()) q.close();
  }
}

function toSqsRecord(m: Pending, system: string): SQSRecord {
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
    eventSourceARN: `arn:aws:sqs:local:000000000000:paybridge-retry-${system}`,
    awsRegion: 'local',
  };
}
