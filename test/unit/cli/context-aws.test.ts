import { GetQueueAttributesCommand, GetQueueUrlCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { awsContext } from '../../../shared/cli/context-aws.js';
import { parseMessageKeys, parseRetryMessage } from '../../../shared/queue/port.js';

const sqs = mockClient(SQSClient);
const ssm = mockClient(SSMClient);
const STAGE_KEY = 's'.repeat(64);
const url = (name: string) => `https://sqs.eu-north-1.amazonaws.com/123456789012/${name}`;

describe('the command on a deployed stage', () => {
  afterEach(() => {
    sqs.reset();
    ssm.reset();
  });

  it('asks SQS nothing until an action queues something, then uses the stage\'s per-system queues', async () => {
    sqs.on(GetQueueUrlCommand).callsFake((input: { QueueName: string }) => ({ QueueUrl: url(input.QueueName) }));
    sqs.on(SendMessageCommand).resolves({ MessageId: 'm1' });
    sqs.on(GetQueueAttributesCommand).resolves({ Attributes: { ApproximateNumberOfMessages: '2' } });
    ssm.on(GetParameterCommand, { Name: '/paybridge/prod/common/RETRY_MESSAGE_KEY', WithDecryption: true }).resolves({ Parameter: { Value: STAGE_KEY } });
    const ctx = await awsContext('prod', 'eu-north-1');
    expect(ctx.where).toBe('stage prod (eu-north-1)');
    expect(sqs.calls()).toHaveLength(0);

    await ctx.queue.send({ pk: 'brp#default#sale-1', system: 'brp', reason: 'repost' }, 0);
    expect(sqs.commandCalls(GetQueueUrlCommand).map((c) => c.args[0].input.QueueName)).toHaveLength(12);
    expect(sqs.commandCalls(SendMessageCommand)[0]?.args[0].input.QueueUrl).toBe(url('paybridge-prod-retry-brp'));
    // Signed with the stage's key (issue 20 item 4): the workers read nothing else.
    const body = sqs.commandCalls(SendMessageCommand)[0]?.args[0].input.MessageBody as string;
    expect(parseRetryMessage(body, parseMessageKeys(STAGE_KEY))).toMatchObject({ pk: 'brp#default#sale-1', reason: 'repost' });
    // Every system's dead-letter queue is counted; the URLs are looked up once.
    expect(await ctx.deadLetters.count()).toBe(12);
    expect(sqs.commandCalls(GetQueueAttributesCommand).map((c) => c.args[0].input.QueueUrl)).toContain(url('paybridge-prod-retry-nif-corporate-dlq'));
    expect(sqs.commandCalls(GetQueueUrlCommand)).toHaveLength(12);
  });
});
