import { DeleteMessageCommand, GetQueueAttributesCommand, GetQueueUrlCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { SqsRetryQueue } from '../queue/sqs.js';
import { DynamoRecordStore, makeDynamoClient } from '../store/dynamo.js';
import { fenceMinter, type CliContext } from './context.js';
import { CLI_SYSTEMS } from './systems.js';

/**
 * A deployed stage, through the default AWS credential chain: the names serverless.yml gives. In a
 * file of its own so the SQS client is loaded only with --stage.
 */
export async function awsContext(stage: string, region: string): Promise<CliContext> {
  const sqs = new SQSClient({ region });
  const url = async (name: string) => (await sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl as string;
  // One retry queue and one dead-letter queue per system (serverless.yml).
  const queues: Record<string, string> = {};
  const dlqs: Record<string, string> = {};
  await Promise.all(
    CLI_SYSTEMS.map(async (system) => {
      queues[system] = await url(`paybridge-${stage}-retry-${system}`);
      dlqs[system] = await url(`paybridge-${stage}-retry-${system}-dlq`);
    }),
  );
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
