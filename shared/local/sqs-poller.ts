import {
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type Message,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { setMaxListeners } from 'node:events';
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import type { BatchConsumer, LocalQueueOptions } from '../queue/local.js';
import type { MessageKeys, RetryMessage, RetryQueue } from '../queue/port.js';
import { SqsRetryQueue } from '../queue/sqs.js';
import type { FauxqsQueues } from './fauxqs.js';

/** SQS hands out at most ten messages per ReceiveMessage (and deletes at most ten per batch). */
const RECEIVE_MAX = 10;
/** Each receive waits this long for a message (long polling), short enough for a quick stop. */
const WAIT_SECONDS = 1;

interface Slot {
  system: string;
  handle: BatchConsumer;
}

/**
 * The retry queues on an SQS server (fauxqs) and a poller per worker that does what Lambda's SQS event
 * source mapping does (AWS Lambda developer guide, "Using Lambda with Amazon SQS"):
 *
 * - polls with ReceiveMessage (at most 10 a call, long polling) and gathers a batch of up to `batchSize`
 *   for up to the batching window from its first message (window 0: what one receive returned);
 * - invokes the worker with the batch as an SQS event, at most `concurrency` batches per worker at once;
 * - deletes what the invocation did not report in `batchItemFailures` (ReportBatchItemFailures); a
 *   thrown or timed-out invocation (past `invocationTimeoutMs`) deletes nothing, and a response naming a
 *   message that was not in the batch counts as a failure of the whole batch, as in Lambda;
 * - leaves the rest to SQS: a message not deleted comes back after the queue's visibility timeout, and
 *   after maxReceiveCount receives the queue's redrive policy moves it to the dead-letter queue.
 *
 * Sends and depth go through the functions' own adapter, shared/queue/sqs.ts.
 */
export class SqsLocalQueue implements RetryQueue {
  private readonly adapter: SqsRetryQueue;
  private readonly loops = new Set<Promise<void>>();
  private readonly abort = new AbortController();
  private invocations = 0;
  private paused = false;
  private closed = false;

  constructor(
    /** The server, its client and queues (tests send to them directly). */
    readonly sqs: FauxqsQueues,
    private readonly options: LocalQueueOptions,
    /** RETRY_MESSAGE_KEY: the adapter signs every body, as in AWS; the workers verify it (shared/queue/port.ts). */
    keys: MessageKeys,
  ) {
    this.adapter = new SqsRetryQueue(sqs.client, sqs.urls, keys);
    // Every poller's receive listens on this one signal (a stop ends them all): one per worker slot.
    setMaxListeners(0, this.abort.signal);
  }

  send(message: RetryMessage, delaySeconds: number): Promise<void> {
    return this.adapter.send(message, delaySeconds);
  }

  depth(system: string): Promise<number | undefined> {
    return this.adapter.depth(system);
  }

  /** One worker of `system`: `concurrency` pollers, each invoking it with one batch at a time. */
  addConsumer(system: string, handle: BatchConsumer): void {
    if (!this.sqs.urls[system]) throw new Error(`no SQS retry queue was made for ${system}`);
    for (let i = 0; i < this.options.concurrency; i++) {
      const slot: Slot = { system, handle };
      const loop = this.poll(slot).finally(() => this.loops.delete(loop));
      this.loops.add(loop);
    }
  }

  private async poll(slot: Slot): Promise<void> {
    const url = this.sqs.urls[slot.system] as string;
    // Bounded by the stack's life: pause() or close() ends it; a failing server is retried after a pause.
    while (!this.paused && !this.closed) {
      try {
        const batch = await this.gather(url);
        if (batch.length === 0 || this.paused || this.closed) continue;
        this.invocations++;
        try {
          await this.invoke(slot, url, batch);
        } finally {
          this.invocations--;
        }
      } catch {
        if (this.closed || this.paused) return;
        // The server refused or was unreachable for a moment: poll again shortly, as Lambda's poller does.
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /** Receives until the batch is full or the batching window (from its first message) has passed. */
  private async gather(url: string): Promise<Message[]> {
    const batch: Message[] = [];
    const window = this.options.batchingWindowMs ?? 0;
    let first: number | undefined;
    for (let round = 0; round < 10_000; round++) {
      const left = first === undefined ? 0 : first + window - Date.now();
      if (first !== undefined && (window === 0 || left <= 0 || batch.length >= this.options.batchSize)) break;
      const out = await this.sqs.client.send(
        new ReceiveMessageCommand({
          QueueUrl: url,
          MaxNumberOfMessages: Math.min(RECEIVE_MAX, this.options.batchSize - batch.length),
          // Long polling for the first message; then short receives until the window closes.
          WaitTimeSeconds: first === undefined ? WAIT_SECONDS : 0,
          MessageSystemAttributeNames: ['All'],
        }),
        { abortSignal: this.abort.signal },
      );
      const got = out.Messages ?? [];
      batch.push(...got);
      if (first === undefined) {
        if (got.length === 0) return batch; // nothing waiting: the caller polls again
        first = Date.now();
      } else if (got.length === 0) {
        await new Promise((r) => setTimeout(r, Math.max(1, Math.min(100, left))));
      }
      if (this.paused || this.closed) break;
    }
    return batch;
  }

  private async invoke(slot: Slot, url: string, batch: Message[]): Promise<void> {
    const event: SQSEvent = { Records: batch.map((m) => toRecord(m, url, this.sqs.region)) };
    const ids = new Set(event.Records.map((r) => r.messageId));
    let failed: Set<string>;
    let timer: NodeJS.Timeout | undefined;
    try {
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('invocation timed out')), this.options.invocationTimeoutMs);
      });
      const response = await Promise.race([slot.handle(event), timedOut]);
      failed = new Set((response?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
      // Lambda fails the whole batch when the response names a message it did not send.
      if ([...failed].some((id) => !ids.has(id))) failed = new Set(ids);
    } catch {
      failed = new Set(ids);
    } finally {
      clearTimeout(timer);
    }
    const done = batch.filter((m) => !failed.has(m.MessageId as string));
    for (let i = 0; i < done.length; i += RECEIVE_MAX) {
      const chunk = done.slice(i, i + RECEIVE_MAX);
      // A stack closed meanwhile has no server left to tell: its queues die with it.
      if (this.closed) return;
      await this.sqs.client.send(
        new DeleteMessageBatchCommand({ QueueUrl: url, Entries: chunk.map((m, j) => ({ Id: String(j), ReceiptHandle: m.ReceiptHandle as string })) }),
      );
    }
  }

  /** Messages on every retry queue: visible, in flight or delayed. */
  private async waiting(): Promise<number> {
    let total = 0;
    for (const url of Object.values(this.sqs.urls)) {
      const out = await this.sqs.client.send(
        new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'] }),
      );
      const a = out.Attributes ?? {};
      total += Number(a.ApproximateNumberOfMessages ?? 0) + Number(a.ApproximateNumberOfMessagesNotVisible ?? 0) + Number(a.ApproximateNumberOfMessagesDelayed ?? 0);
    }
    return total;
  }

  /** Resolves true when every queue is empty and no batch runs (tests), or false after `timeoutMs`. */
  async idle(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.invocations === 0 && (await this.waiting()) === 0 && this.invocations === 0) return true;
      await new Promise((r) => setTimeout(r, 50));
    }
    return false;
  }

  /** Stops polling (a shutdown): messages stay on the queues, batches in flight finish. */
  pause(): void {
    this.paused = true;
    this.abort.abort();
  }

  /** Resolves once no batch is in flight, or false after `timeoutMs`. */
  async settled(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.invocations > 0) {
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, 25));
    }
    return true;
  }

  async deadLetterCount(): Promise<number> {
    let total = 0;
    for (const url of Object.values(this.sqs.deadLetterUrls)) {
      const out = await this.sqs.client.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }));
      total += Number(out.Attributes?.ApproximateNumberOfMessages ?? 0) + Number(out.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
    }
    return total;
  }

  /** The bodies on every dead-letter queue, without taking them (they stay visible). */
  async deadLetters(): Promise<{ system: string; body: string; receiveCount: number }[]> {
    const out: { system: string; body: string; receiveCount: number }[] = [];
    for (const [system, url] of Object.entries(this.sqs.deadLetterUrls)) {
      const got = await this.sqs.client.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: RECEIVE_MAX, VisibilityTimeout: 0, MessageSystemAttributeNames: ['All'] }));
      for (const m of got.Messages ?? []) out.push({ system, body: m.Body ?? '', receiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? 0) });
    }
    return out;
  }

  /** Moves every dead letter back to its retry queue (as the operator's redrive does); returns how many. */
  async redriveDeadLetters(system?: string): Promise<number> {
    let moved = 0;
    for (const [name, dlq] of Object.entries(this.sqs.deadLetterUrls)) {
      if (system && name !== system) continue;
      for (let round = 0; round < 10_000; round++) {
        const got = await this.sqs.client.send(new ReceiveMessageCommand({ QueueUrl: dlq, MaxNumberOfMessages: RECEIVE_MAX, VisibilityTimeout: 30 }));
        const messages = got.Messages ?? [];
        if (messages.length === 0) break;
        for (const m of messages) {
          await this.sqs.client.send(new SendMessageCommand({ QueueUrl: this.sqs.urls[name] as string, MessageBody: m.Body ?? '' }));
          await this.sqs.client.send(new DeleteMessageCommand({ QueueUrl: dlq, ReceiptHandle: m.ReceiptHandle as string }));
          moved++;
        }
      }
    }
    return moved;
  }

  close(): void {
    this.closed = true;
    this.paused = true;
    this.abort.abort();
  }
}

function toRecord(m: Message, url: string, region: string): SQSRecord {
  const a = m.Attributes ?? {};
  const name = url.slice(url.lastIndexOf('/') + 1);
  return {
    messageId: m.MessageId as string,
    receiptHandle: m.ReceiptHandle as string,
    body: m.Body ?? '',
    attributes: {
      ApproximateReceiveCount: a.ApproximateReceiveCount ?? '1',
      SentTimestamp: a.SentTimestamp ?? String(Date.now()),
      SenderId: a.SenderId ?? 'local',
      ApproximateFirstReceiveTimestamp: a.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
    },
    messageAttributes: {},
    md5OfBody: m.MD5OfBody ?? '',
    eventSource: 'aws:sqs',
    eventSourceARN: `arn:aws:sqs:${region}:000000000000:${name}`,
    awsRegion: region,
  };
}
