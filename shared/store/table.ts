import { CreateTableCommand, DescribeTableCommand, ResourceNotFoundException, UpdateTimeToLiveCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';

/**
 * The single table's shape, shared by the local stack and the tests. serverless.yml declares the same
 * keys and indexes for AWS (a test compares the two).
 *
 * - `due-index` (sparse): `<system>#due#<shard>` / `#held#` / `#unknown#` by `nextAttemptAt`: what the
 *   sweep, the alarms and the operator's held/unknown lists read.
 * - `status-index` (sparse: payment records only): `<system>#<status>#<shard>` by `createdMs`: listing by
 *   system, status and time without a Scan.
 * Both are sharded by a hash of the key, so at volume the writes of one system spread over `shards`
 * partitions instead of one (issue 13).
 */
export const TABLE_KEYS = {
  partitionKey: 'pk',
  dueIndex: 'due-index',
  dueIndexHash: 'dueShard',
  dueIndexRange: 'nextAttemptAt',
  statusIndex: 'status-index',
  statusIndexHash: 'statusShard',
  statusIndexRange: 'createdMs',
  ttlAttribute: 'ttl',
} as const;

export async function ensureTable(client: DynamoDBClient, tableName: string): Promise<void> {
  try {
    await client.send(new DescribeTableCommand({ TableName: tableName }));
    return;
  } catch (err) {
    if (!(err instanceof ResourceNotFoundException) && (err as Error).name !== 'ResourceNotFoundException') throw err;
  }
  await client.send(
    new CreateTableCommand({
      TableName: tableName,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: TABLE_KEYS.partitionKey, AttributeType: 'S' },
        { AttributeName: TABLE_KEYS.dueIndexHash, AttributeType: 'S' },
        { AttributeName: TABLE_KEYS.dueIndexRange, AttributeType: 'N' },
        { AttributeName: TABLE_KEYS.statusIndexHash, AttributeType: 'S' },
        { AttributeName: TABLE_KEYS.statusIndexRange, AttributeType: 'N' },
      ],
      KeySchema: [{ AttributeName: TABLE_KEYS.partitionKey, KeyType: 'HASH' }],
      GlobalSecondaryIndexes: [
        {
          IndexName: TABLE_KEYS.dueIndex,
          KeySchema: [
            { AttributeName: TABLE_KEYS.dueIndexHash, KeyType: 'HASH' },
            { AttributeName: TABLE_KEYS.dueIndexRange, KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'KEYS_ONLY' },
        },
        {
          IndexName: TABLE_KEYS.statusIndex,
          KeySchema: [
            { AttributeName: TABLE_KEYS.statusIndexHash, KeyType: 'HASH' },
            { AttributeName: TABLE_KEYS.statusIndexRange, KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'KEYS_ONLY' },
        },
      ],
    }),
  );
  // A new table is CREATING at first, and reads and writes are refused (ResourceNotFoundException) until it
  // is ACTIVE: dynalite flips it on a timer, which a busy machine delays. Wait for it, bounded, as the
  // SDK's waitUntilTableExists does (its shortest poll is a second, too slow for a test stack's start).
  for (let i = 0; i < 500; i++) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    if (Table?.TableStatus === 'ACTIVE') break;
    if (i === 499) throw new Error(`table ${tableName} still ${Table?.TableStatus ?? 'missing'} after 5 s`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  // dynalite accepts but does not act on TTL; AWS does. Kept so the local table matches.
  await client
    .send(new UpdateTimeToLiveCommand({ TableName: tableName, TimeToLiveSpecification: { AttributeName: TABLE_KEYS.ttlAttribute, Enabled: true } }))
    .catch(() => undefined);
}
