import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import type { PaymentRecord } from '../../../shared/core/types.js';
import { DynamoRecordStore } from '../../../shared/store/dynamo.js';

const ddb = mockClient(DynamoDBDocumentClient);

const record: PaymentRecord = {
  pk: 'cambio#default#c1', system: 'cambio', tenant: 'default', key: 'c1', status: 'retrying', version: 1, revision: 1, budgetFrom: 0, payloadHash: 'h1',
  request: { contactId: 'c1' }, attempts: 0, failures: 0, checkpoints: {}, history: [], correlationId: 'r',
  createdAt: '2026-11-22T12:00:00.000Z', updatedAt: '2026-11-22T12:00:00.000Z', ttl: 1,
};

function conditionFailed(item?: Record<string, unknown>) {
  return new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {}, ...(item ? { Item: marshall(item) } : {}) });
}

describe('DynamoRecordStore', () => {
  afterEach(() => ddb.reset());
  const store = () => new DynamoRecordStore(new DynamoDBClient({ region: 'eu-north-1' }), 'records');

  it('claims with one conditional PutItem asking for the old item on failure', async () => {
    ddb.on(PutCommand).resolves({});
    expect(await store().claim(record)).toEqual({ claimed: true });
    const input = ddb.commandCalls(PutCommand)[0]?.args[0].input;
    expect(input).toMatchObject({
      TableName: 'records',
      ConditionExpression: 'attribute_not_exists(pk)',
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
    });
    expect(ddb.calls()).toHaveLength(1);
  });

  it('uses the old item DynamoDB returns with the failed condition, without a read', async () => {
    ddb.on(PutCommand).rejects(conditionFailed({ ...record, payloadHash: 'other' }));
    const result = await store().claim(record);
    expect(result).toMatchObject({ claimed: false, existing: { payloadHash: 'other' } });
    expect(ddb.commandCalls(GetCommand)).toHaveLength(0);
  });

  it('falls back to a consistent read where the old item is not returned (dynalite)', async () => {
    ddb.on(PutCommand).rejects(conditionFailed());
    ddb.on(GetCommand).resolves({ Item: record });
    const result = await store().claim({ ...record, payloadHash: 'h2' });
    expect(result).toMatchObject({ claimed: false, existing: { payloadHash: 'h1' } });
    expect(ddb.commandCalls(GetCommand)[0]?.args[0].input.ConsistentRead).toBe(true);
  });

  it('replaces only at the expected version, bumping it', async () => {
    ddb.on(PutCommand).resolvesOnce({}).rejectsOnce(conditionFailed());
    expect(await store().replace({ ...record, status: 'posted' }, 4)).toBe(true);
    const input = ddb.commandCalls(PutCommand)[0]?.args[0].input;
    // The owner is part of the condition (issue 20, item 1; test/unit/store/owner.test.ts runs it on dynalite).
    expect(input?.ConditionExpression).toBe('#v = :v AND attribute_not_exists(#caller)');
    expect(input?.ExpressionAttributeValues).toEqual({ ':v': 4 });
    expect(input?.Item?.version).toBe(5);
    expect(await store().replace(record, 4)).toBe(false);
  });

  it('lets other errors through', async () => {
    ddb.on(PutCommand).rejects(new Error('ProvisionedThroughputExceeded'));
    await expect(store().claim(record)).rejects.toThrow('ProvisionedThroughputExceeded');
  });
});
