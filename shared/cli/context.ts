import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { DeleteMessageCommand, GetQueueAttributesCommand, GetQueueUrlCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { randomBytes } from 'node:crypto';
import { SYSTEM_NAMES } from '../config.js';
import type { Fence } from '../core/types.js';
import type { RetryQueue } from '../queue/port.js';
import { SqsRetryQueue } from '../queue/sqs.js';
import { DynamoRecordStore, makeDynamoClient } from '../store/dynamo.js';
import type { RecordStore } from '../store/port.js';

export interface DeadLetters {
  count(): Promise<number>;
  /** Moves every message back to the retry queue; reports progress as it goes. */
  redrive(progress: (moved: number) => void): Promise<number>;
}

export interface CliContext {
  where: string;
  store: RecordStore;
  queue: RetryQueue;
  /** Fences for the attempts an operator's action queues (unique to this run of the command). */
  fence: () => Fence;
  deadLetters: DeadLetters;
  /** The local stack's API and sandboxes (simulate only runs there). */
  local?: { apiUrl: string; apiKey: string; sandboxes: Record<string, string | undefined> };
}

interface LocalFile {
  apiUrl: string;
  apiKey: string;
  dynamoEndpoint: string;
  tableName: string;
  sandboxes: Record<string, string | undefined>;
}

async function localHook(file: LocalFile, hook: string, body: unknown = {}): Promise<Record<string, number>> {
  const res = await fetch(`${file.apiUrl}/__local/${hook}`, {
    method: 'POST',
    headers: { 'x-api-key': file.apiKey, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) throw new Error(`the local stack answered ${res.status} to ${hook}`);
  return (await res.json()) as Record<string, number>;
}

/** Fence ids of one run of the command: its own id and a counter, like a worker's. */
function fenceMinter(): () => Fence {
  const id = `cli.${randomBytes(6).toString('base64url')}`;
  let n = 0;
  return () => ({ id, n: n++ });
}

/** The running `npm start`, found through the file it writes. */
export function localContext(path = process.env.PAYBRIDGE_LOCAL_FILE ?? '.data/local.json'): CliContext {
  let file: LocalFile;
  try {
    file = JSON.parse(readFileSync(resolve(path), 'utf8')) as LocalFile;
  } catch {
    throw new Error(`no local stack found (${path} is missing): start one with npm start, or pass --stage for a deployed stage`);
  }
  return {
    where: `local stack at ${file.apiUrl}`,
    store: new DynamoRecordStore(makeDynamoClient({ endpoint: file.dynamoEndpoint }), file.tableName),
    queue: { send: async (message, delaySeconds) => void (await localHook(file, 'enqueue', { pk: message.pk, delaySeconds, message })) },
    fence: fenceMinter(),
    deadLetters: {
      count: async () => (await localHook(file, 'dlq')).count ?? 0,
      redrive: async (progress) => {
        const moved = (await localHook(file, 'dlq/redrive')).moved ?? 0;
        progress(moved);
        return moved;
      },
    },
    local: { apiUrl: file.apiUrl, apiKey: file.apiKey, sandboxes: file.sandboxes },
  };
}

/** A deployed stage, through the default AWS credential chain: the names serverless.yml gives. */
export async function awsContext(stage: string, region: string): Promise<CliContext> {
  const sqs = new SQSClient({ region });
  const url = async (name: string) => (await sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl as string;
  // One retry queue and one dead-letter queue per system (serverless.yml).
  const queues: Record<string, string> = {};
  const dlqs: Record<string, string> = {};
  for (const system of SYSTEM_NAMES) {
    queues[system] = await url(`paybridge-${stage}-retry-${system}`);
    dlqs[system] = await url(`paybridge-${stage}-retry-${system}-dlq`);
  }
  return {
    where: `stage ${stage} (${region})`,
    store: new DynamoRecordStore(makeDynamoClient({ region }), `paybridge-${stage}-records`),
    queue: new SqsRetryQueue(sqs, queues),
    fence: fenceMinter(),
    deadLetters: {
      async count() {
        let total = 0;
        for (const dlqUrl of Object.values(dlqs)) {
          const out = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['ApproximateNumberOfMessages'] }));
          total += Number(out.Attributes?.ApproximateNumberOfMessages ?? 0);
        }
        return total;
      },
      async redrive(progress) {
        let moved = 0;
        for (const [system, dlqUrl] of Object.entries(dlqs)) {
          // Bounded: at most 1,000 batches per queue per run; run again for more.
          for (let batch = 0; batch < 1_000; batch++) {
            const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl: dlqUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 60 }));
            const messages = got.Messages ?? [];
            if (messages.length === 0) break;
            for (const m of messages) {
              await sqs.send(new SendMessageCommand({ QueueUrl: queues[system], MessageBody: m.Body ?? '{}' }));
              await sqs.send(new DeleteMessageCommand({ QueueUrl: dlqUrl, ReceiptHandle: m.ReceiptHandle }));
              progress(++moved);
            }
          }
        }
        return moved;
      },
    },
  };
}
