import { GetQueueAttributesCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { observed } from '../aws/observe.js';
import type { Config } from '../config.js';
import { SQS_MAX_DELAY_SECONDS } from '../core/retry-policy.js';
import { encodeRetryMessage, type MessageKeys, type RetryMessage, type RetryQueue } from './port.js';

/**
 * One SQS queue per system. A function knows the queues it may use: its own system's
 * (`RETRY_QUEUE_URL`) or, for the sweep, all of them (`RETRY_QUEUE_URLS`, a JSON object).
 */
export class SqsRetryQueue implements RetryQueue {
  constructor(
    private readonly client: SQSClient,
    private readonly urls: Readonly<Record<string, string>>,
    /** RETRY_MESSAGE_KEY: every body is signed, and the workers read nothing unsigned (issue 20 item 4). */
    private readonly keys: MessageKeys,
  ) {}

  private url(system: string): string {
    const url = this.urls[system] ?? this.urls['*'];
    if (!url) throw new Error(`no retry queue is configured for ${system} in this function (RETRY_QUEUE_URL / RETRY_QUEUE_URLS)`);
    return url;
  }

  async send(message: RetryMessage, delaySeconds: number): Promise<void> {
    await this.client.send(
      new SendMessageCommand({
        QueueUrl: this.url(message.system),
        MessageBody: encodeRetryMessage(message, this.keys),
        DelaySeconds: Math.max(0, Math.min(SQS_MAX_DELAY_SECONDS, Math.ceil(delaySeconds))),
      }),
    );
  }

  private readonly depths = new Map<string, { at: number; value: Promise<number | undefined> }>();

  /** Visible messages on a system's queue, remembered two seconds: the intake asks on every busy request. */
  async depth(system: string): Promise<number | undefined> {
    const now = Date.now();
    const known = this.depths.get(system);
    if (known && now - known.at < 2_000) return known.value;
    const value = this.client
      .send(new GetQueueAttributesCommand({ QueueUrl: this.url(system), AttributeNames: ['ApproximateNumberOfMessages'] }))
      .then((out) => {
        const n = Number(out.Attributes?.ApproximateNumberOfMessages);
        return Number.isFinite(n) ? n : undefined;
      });
    this.depths.set(system, { at: now, value });
    // A failed ask is not remembered: the next request asks again.
    value.catch(() => this.depths.delete(system));
    return value;
  }
}

/**
 * The deployed queues (a handler that sends messages passes this to awsDeps): every system's for the
 * sweep (`RETRY_QUEUE_URLS`), else the function's own system's (`RETRY_QUEUE_URL`).
 */
export function sqsQueue(config: Pick<Config, 'RETRY_QUEUE_URLS' | 'RETRY_QUEUE_URL' | 'AWS_REGION' | 'messageKeys'>): RetryQueue {
  const urls = config.RETRY_QUEUE_URLS ?? (config.RETRY_QUEUE_URL ? { '*': config.RETRY_QUEUE_URL } : {});
  // Its calls are compared with the function's IAM role in a test (shared/aws/observe.ts).
  return new SqsRetryQueue(observed(new SQSClient({ region: config.AWS_REGION }), 'sqs'), urls, config.messageKeys);
}
