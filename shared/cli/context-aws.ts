import type { SQSClient } from '@aws-sdk/client-sqs';
import { parseMessageKeys, type MessageKeys, type RetryQueue } from '../queue/port.js';
import { AUDIT_TTL_DAYS, fenceMinter, type CliContext } from './context.js';
import { CLI_SYSTEMS } from './systems.js';

interface Queues {
  sqs: SQSClient;
  sqsApi: typeof import('@aws-sdk/client-sqs');
  queue: RetryQueue;
  /** Per system: its retry queue's and its dead-letter queue's URL. */
  urls: Record<string, { queue: string; dlq: string }>;
}

/**
 * The stage's RETRY_MESSAGE_KEY, which every message the workers accept is signed with (issue 20 item 4):
 * RETRY_MESSAGE_KEY in the operator's environment, else SSM `/paybridge/<stage>/common/RETRY_MESSAGE_KEY`
 * with the operator's credentials. Read only when an action queues something.
 */
async function stageMessageKeys(stage: string, region: string, env: Record<string, string | undefined> = process.env): Promise<MessageKeys> {
  if (env.RETRY_MESSAGE_KEY?.trim()) return parseMessageKeys(env.RETRY_MESSAGE_KEY);
  const { SSMClient, GetParameterCommand } = await import('@aws-sdk/client-ssm');
  const name = `/paybridge/${stage}/common/RETRY_MESSAGE_KEY`;
  try {
    const out = await new SSMClient({ region }).send(new GetParameterCommand({ Name: name, WithDecryption: true }));
    return parseMessageKeys(out.Parameter?.Value ?? '');
  } catch (err) {
    throw new Error(`the stage's message key ${name} could not be read (${(err as Error).message}): the retry workers accept only messages signed with it`);
  }
}

/**
 * A deployed stage, through the default AWS credential chain: the names serverless.yml gives. The
 * SQS client is loaded, and the twelve queue URLs looked up, only when an action queues something or
 * counts dead letters: listing and showing read the table alone.
 */
export async function awsContext(stage: string, region: string): Promise<CliContext> {
  const [{ DynamoRecordStore, DynamoLimiterStore, makeDynamoClient, documentClient }, { AuditLog }] = await Promise.all([import('../store/dynamo.js'), import('../store/browse.js')]);
  const dynamo = makeDynamoClient({ region });
  let queues: Promise<Queues> | undefined;
  const open = () =>
    (queues ??= (async () => {
      const [sqsApi, { SqsRetryQueue }, keys] = await Promise.all([import('@aws-sdk/client-sqs'), import('../queue/sqs.js'), stageMessageKeys(stage, region)]);
      const sqs = new sqsApi.SQSClient({ region });
      const url = async (name: string) => (await sqs.send(new sqsApi.GetQueueUrlCommand({ QueueName: name }))).QueueUrl as string;
      // One retry queue and one dead-letter queue per system (serverless.yml).
      const urls = Object.fromEntries(
        await Promise.all(CLI_SYSTEMS.map(async (system) => [system, { queue: await url(`paybridge-${stage}-retry-${system}`), dlq: await url(`paybridge-${stage}-retry-${system}-dlq`) }] as const)),
      );
      const queue = new SqsRetryQueue(sqs, Object.fromEntries(Object.entries(urls).map(([system, u]) => [system, u.queue])), keys);
      return { sqs, sqsApi, queue, urls };
    })());
  return {
    where: `stage ${stage} (${region})`,
    store: new DynamoRecordStore(dynamo, `paybridge-${stage}-records`),
    limiter: new DynamoLimiterStore(dynamo, `paybridge-${stage}-records`),
    audit: new AuditLog(documentClient(dynamo), `paybridge-${stage}-records`, AUDIT_TTL_DAYS),
    queue: { send: async (message, delaySeconds) => (await open()).queue.send(message, delaySeconds) },
    fence: fenceMinter(),
    deadLetters: {
      async count() {
        const { sqs, sqsApi, urls } = await open();
        let total = 0;
        for (const { dlq } of Object.values(urls)) {
          const out = await sqs.send(new sqsApi.GetQueueAttributesCommand({ QueueUrl: dlq, AttributeNames: ['ApproximateNumberOfMessages'] }));
          total += Number(out.Attributes?.ApproximateNumberOfMessages ?? 0);
        }
        return total;
      },
      async redrive(progress) {
        const { sqs, sqsApi, urls } = await open();
        let moved = 0;
        for (const { queue, dlq } of Object.values(urls)) {
          // Bounded: at most 1,000 batches per queue per run; run again for more.
          for (let batch = 0; batch < 1_000; batch++) {
            const got = await sqs.send(new sqsApi.ReceiveMessageCommand({ QueueUrl: dlq, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 60 }));
            const messages = got.Messages ?? [];
            if (messages.length === 0) break;
            for (const m of messages) {
              await sqs.send(new sqsApi.SendMessageCommand({ QueueUrl: queue, MessageBody: m.Body ?? '{}' }));
              await sqs.send(new sqsApi.DeleteMessageCommand({ QueueUrl: dlq, ReceiptHandle: m.ReceiptHandle }));
              progress(++moved);
            }
          }
        }
        return moved;
      },
    },
  };
}
