import type { AddressInfo } from 'node:net';
import { CreateTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, DeleteCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import dynalite from 'dynalite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countWrites } from '../../../shared/local/dynamo-tap.js';
import { documentClient, makeDynamoClient } from '../../../shared/store/dynamo.js';

describe('countWrites (the local stack counts endpoint writes at its dynalite, whoever sends them)', () => {
  const db = dynalite({ createTableMs: 0 });
  const count = countWrites(db, '"S":"endpoint#');
  let client: DynamoDBClient;
  beforeAll(async () => {
    await new Promise<void>((resolve) => db.listen(0, '127.0.0.1', () => resolve()));
    client = makeDynamoClient({ endpoint: `http://127.0.0.1:${(db.address() as AddressInfo).port}` });
    await client.send(new CreateTableCommand({ TableName: 'tap', AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }], KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }], BillingMode: 'PAY_PER_REQUEST' }));
  });
  afterAll(async () => {
    client?.destroy();
    await new Promise<void>((resolve) => db.close(() => resolve()));
  });

  it('counts each write to an endpoint item once it is answered, and nothing else', async () => {
    const doc = documentClient(client);
    const before = count();
    await doc.send(new PutCommand({ TableName: 'tap', Item: { pk: 'endpoint#ep_1', url: 'http://127.0.0.1:9/x' } }));
    expect(count()).toBe(before + 1);
    await doc.send(new UpdateCommand({ TableName: 'tap', Key: { pk: 'endpoint#ep_1' }, UpdateExpression: 'SET #u = :u', ExpressionAttributeNames: { '#u': 'url' }, ExpressionAttributeValues: { ':u': 'http://127.0.0.1:9/y' } }));
    await doc.send(new BatchWriteCommand({ RequestItems: { tap: [{ PutRequest: { Item: { pk: 'cambio#default#k', n: 1 } } }, { DeleteRequest: { Key: { pk: 'endpoint#ep_1' } } }] } }));
    expect(count()).toBe(before + 3);
    // A payment's write, a delivery's (its key names the endpoint without the prefix), a read: not counted.
    await doc.send(new PutCommand({ TableName: 'tap', Item: { pk: 'cambio#default#k2', note: 'endpoint' } }));
    await doc.send(new PutCommand({ TableName: 'tap', Item: { pk: 'delivery#ep_1#evt_1', endpointId: 'ep_1' } }));
    await doc.send(new DeleteCommand({ TableName: 'tap', Key: { pk: 'cambio#default#k2' } }));
    await doc.send(new QueryCommand({ TableName: 'tap', KeyConditionExpression: 'pk = :p', ExpressionAttributeValues: { ':p': 'endpoint#ep_1' } }));
    expect(count()).toBe(before + 3);
    // A body larger than one chunk, the key after the first: still found.
    await doc.send(new PutCommand({ TableName: 'tap', Item: { a: 'x'.repeat(200_000), pk: 'endpoint#ep_2' } }));
    expect(count()).toBe(before + 4);
  });
});
