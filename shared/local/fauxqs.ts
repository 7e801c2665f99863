import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';

/**
 * An SQS-compatible server in this process (fauxqs, the modern JSON protocol), for `LOCAL_QUEUE=sqs npm start`
 * and its tests: the functions' own SQS adapter (shared/queue/sqs.ts) talks to it through the AWS SDK as
 * it talks to SQS in AWS.
 *
 * Loopback only: fauxqs's startFauxqs() listens on every interface, so its app is built and bound to
 * 127.0.0.1 here. Its queue URLs name `sqs.<region>.localhost` unless its store's host is empty, in which
 * case they name the address the request came to (`http://127.0.0.1:<port>/...`): a URL the SDK can
 * reach without resolving a made-up host name. buildApp() sets the store's host only when given one, and
 * the package exports no store class, so the store is loaded from fauxqs's own files (pinned version).
 */

export interface FauxqsQueues {
  /** The server's endpoint, `http://127.0.0.1:<port>`. */
  endpoint: string;
  region: string;
  /** The SDK client the stack uses (fake credentials: nothing here talks to AWS). */
  client: SQSClient;
  /** Each system's retry queue URL. */
  urls: Record<string, string>;
  /** Each system's dead-letter queue URL. */
  deadLetterUrls: Record<string, string>;
  close(): Promise<void>;
}

export interface FauxqsQueueSettings {
  /** The retry queues' VisibilityTimeout: a message a batch did not finish comes back after this. */
  visibilityTimeoutSeconds: number;
  /** The redrive policy: after this many receives a message moves to its dead-letter queue. */
  maxReceiveCount: number;
}

/** fauxqs's package directory (its `exports` name only the entry). */
function fauxqsDist(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', 'fauxqs', 'dist');
    if (existsSync(join(candidate, 'sqs', 'sqsStore.js'))) return candidate;
    if (dirname(dir) === dir) throw new Error('fauxqs is not installed: run npm install (LOCAL_QUEUE=sqs needs it)');
  }
}

export async function startFauxqs(systems: readonly string[], settings: FauxqsQueueSettings, region: string, prefix = 'paybridge-local'): Promise<FauxqsQueues> {
  const { buildApp } = await import('fauxqs');
  const { SqsStore } = (await import(pathToFileURL(join(fauxqsDist(), 'sqs', 'sqsStore.js')).href)) as { SqsStore: new () => { host: string; region: string } };
  const sqsStore = new SqsStore();
  // Empty: each queue URL names the host the request reached (see above).
  sqsStore.host = '';
  sqsStore.region = region;
  const app = buildApp({ logger: false, defaultRegion: region, stores: { sqsStore } as never });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('fauxqs did not report its port');
  const endpoint = `http://127.0.0.1:${address.port}`;
  const client = new SQSClient({ region, endpoint, credentials: { accessKeyId: 'paybridge-local', secretAccessKey: 'paybridge-local' } });
  try {
    const urls: Record<string, string> = {};
    const deadLetterUrls: Record<string, string> = {};
    for (const system of systems) {
      const dlq = await client.send(new CreateQueueCommand({ QueueName: `${prefix}-dlq-${system}` }));
      const dlqUrl = dlq.QueueUrl as string;
      const arn = (await client.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }))).Attributes?.QueueArn;
      // As shared/aws/stack.ts declares each system's queue: a visibility timeout and a redrive policy.
      const queue = await client.send(
        new CreateQueueCommand({
          QueueName: `${prefix}-retry-${system}`,
          Attributes: {
            VisibilityTimeout: String(settings.visibilityTimeoutSeconds),
            RedrivePolicy: JSON.stringify({ deadLetterTargetArn: arn, maxReceiveCount: settings.maxReceiveCount }),
          },
        }),
      );
      urls[system] = queue.QueueUrl as string;
      deadLetterUrls[system] = dlqUrl;
      if (!urls[system]?.startsWith(`${endpoint}/`)) throw new Error(`fauxqs made the queue URL ${String(urls[system])}, not one under ${endpoint}`);
    }
    return {
      endpoint,
      region,
      client,
      urls,
      deadLetterUrls,
      close: async () => {
        client.destroy();
        await app.close();
      },
    };
  } catch (err) {
    client.destroy();
    await app.close();
    throw err;
  }
}
