import { createHash, randomUUID } from 'node:crypto';
import { SYSTEM_NAMES } from '../config.js';
import { parseRetryMessage, type MessageKeys, type RetryQueue } from '../queue/port.js';

/**
 * The local stack's retry queues as an SQS endpoint, for `serverless invoke local` (issue 15): a
 * handler invoked that way builds the real SQS client (shared/queue/sqs.ts) from RETRY_QUEUE_URL, and
 * the plugin points that URL and AWS_ENDPOINT_URL_SQS here, so its messages reach the running stack's
 * workers. Only what the functions call is spoken: SendMessage and GetQueueAttributes, in the SQS
 * JSON protocol (AWS SDK v3's). Loopback only, like the rest of the gateway.
 */

/** The path of the endpoint on the local gateway, and the queue URLs under it. */
export const SQS_PATH = '/__local/sqs';

export function localQueueUrl(apiUrl: string, system: string): string {
  return `${apiUrl}${SQS_PATH}/000000000000/paybridge-local-retry-${system}`;
}

function systemOf(queueUrl: unknown): string | undefined {
  if (typeof queueUrl !== 'string') return undefined;
  const m = /\/paybridge-local-retry-([a-z-]+)$/.exec(queueUrl);
  return m?.[1] && (SYSTEM_NAMES as readonly string[]).includes(m[1]) ? m[1] : undefined;
}

export interface SqsReply {
  status: number;
  body: Record<string, unknown>;
}

const fault = (type: string, message: string): SqsReply => ({ status: 400, body: { __type: `com.amazonaws.sqs#${type}`, message } });

/**
 * One SQS JSON-protocol call (`x-amz-target: AmazonSQS.<Operation>`). A message's record snapshot is
 * dropped: this endpoint asks for no key, so what arrives here may only wake a record, and the worker
 * then reads the record itself (fences still decide who may send).
 */
export async function sqsCall(queue: RetryQueue & { depth(system: string): Promise<number | undefined> }, keys: MessageKeys, target: string | undefined, input: Record<string, unknown>): Promise<SqsReply> {
  const operation = target?.replace(/^AmazonSQS\./, '');
  const system = systemOf(input.QueueUrl);
  if (operation !== 'SendMessage' && operation !== 'GetQueueAttributes') return fault('UnsupportedOperation', `the local stack's SQS endpoint answers SendMessage and GetQueueAttributes, not ${target ?? 'nothing'}`);
  if (!system) return fault('QueueDoesNotExist', `no local retry queue ${String(input.QueueUrl)}`);
  if (operation === 'GetQueueAttributes') return { status: 200, body: { Attributes: { ApproximateNumberOfMessages: String((await queue.depth(system)) ?? 0) } } };
  const body = input.MessageBody;
  if (typeof body !== 'string') return fault('MissingParameter', 'MessageBody is required');
  let message;
  try {
    // Signed with the stack's RETRY_MESSAGE_KEY, which invoke local hands the function (issue 20 item 4).
    message = parseRetryMessage(body, keys);
  } catch (err) {
    return fault('InvalidMessageContents', `not a retry message: ${(err as Error).message}`);
  }
  if (message.system !== system) return fault('InvalidMessageContents', `a ${message.system} message sent to the ${system} queue`);
  const { record: _snapshot, ...wake } = message;
  const delay = typeof input.DelaySeconds === 'number' ? input.DelaySeconds : 0;
  await queue.send(wake, Math.max(0, Math.min(900, delay)));
  // The SDK checks the MD5 of the body it sent against this.
  return { status: 200, body: { MessageId: randomUUID(), MD5OfMessageBody: createHash('md5').update(body, 'utf8').digest('hex') } };
}
