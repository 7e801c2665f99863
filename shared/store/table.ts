import { CreateTableCommand, DescribeTableCommand, ResourceNotFoundException, UpdateTimeToLiveCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';

/**
 * The single table's shape, shared by the local stack and the tests. serverless.yml declares the same
 * keys and indexes for AWS (a test compares the two).
 *
 * - `due-index` (sparse): `<system>#due#<shard>` / `#held#` / `#unknown#` by `nextAttemptAt`: what the
 *   sweep, the alarms and the operator's held/unknown lists read.
 * - `status-index` (sparse: payment records only): `<system>#<status>#<shard>` by `createdMs`: listing by
 *   system, status and time without a Scan.
 * - `events-index` (sparse; issue 21, shared/events/): `pending#<shard>` on a record whose settlement
 *   event is not yet handed on (by stamp time), `events#<caller>`, `endpoints#<caller>` and
 *   `due#<endpoint>` (a delivery not yet done, by its next attempt): events out without a Scan.
 * The first two are sharded by a hash of the key, so at volume the writes of one system spread over `shards`
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
  eventsIndex: 'events-index',
  eventsIndexHash: 'eventsKey',
  eventsIndexRange: 'eventAt',
  ttlAttribute: 'ttl',
} as const;

export async function ensureTable(client: DynamoDBClient, tableName: string, waitMs = 10_000): Promise<void> {
  try {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    if (Table?.TableStatus === 'ACTIVE') return;
    // Created by a process that ended before the table turned ACTIVE: wait as for our own (below).
    await untilActive(client, tableName, waitMs);
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
        { AttributeName: TABLE_KEYS.eventsIndexHash, AttributeType: 'S' },
        { AttributeName: TABLE_KEYS.eventsIndexRange, AttributeType: 'N' },
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
        {
          IndexName: TABLE_KEYS.eventsIndex,
          KeySchema: [
            { AttributeName: TABLE_KEYS.eventsIndexHash, KeyType: 'HASH' },
            { AttributeName: TABLE_KEYS.eventsIndexRange, KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'KEYS_ONLY' },
        },
      ],
    }),
  );
  await untilActive(client, tableName, waitMs);
  // dynalite accepts but does not act on TTL; AWS does. Kept so the local table matches.
  await client
    .send(new UpdateTimeToLiveCommand({ TableName: tableName, TimeToLiveSpecification: { AttributeName: TABLE_KEYS.ttlAttribute, Enabled: true } }))
    .catch(() => undefined);
}

/**
 * A new table is CREATING at first, and reads and writes are refused (ResourceNotFoundException) until it
 * is ACTIVE: dynalite flips it on a timer, which a busy machine delays. Waits for it (10 s at most by
 * default), as the SDK's waitUntilTableExists does (its shortest poll is a second, too slow for a test
 * stack's start). dynalite's timer dies with its process: a table a killed process left CREATING stays so.
 */
async function untilActive(client: DynamoDBClient, tableName: string, waitMs: number): Promise<void> {
  const until = Date.now() + waitMs;
  for (;;) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    if (Table?.TableStatus === 'ACTIVE') return;
    if (Date.now() >= until) {
      throw new Error(
        `table ${tableName} is still ${Table?.TableStatus ?? 'missing'} after ${waitMs / 1000} s: a process that created it ended before it was ready. Locally, remove the data folder (PAYBRIDGE_DATA_DIR, .data/dynalite by default) and start again; it holds no records yet`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
