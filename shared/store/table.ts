import { CreateTableCommand, DescribeTableCommand, ResourceNotFoundException, UpdateTableCommand, UpdateTimeToLiveCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';

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
 * - `list-index`: `pay#posted` / `pay#open` / `audit` by `createdMs`, with the attributes a listing
 *   filters on: a console or CLI page of any filter in at most two Queries (issue 22).
 */
export const TABLE_KEYS = {
  partitionKey: 'pk',
  dueIndex: 'due-index',
  dueIndexHash: 'dueShard',
  dueIndexRange: 'nextAttemptAt',
  statusIndex: 'status-index',
  statusIndexHash: 'statusShard',
  statusIndexRange: 'createdMs',
  listIndex: 'list-index',
  listIndexHash: 'listPart',
  listIndexRange: 'createdMs',
  eventsIndex: 'events-index',
  eventsIndexHash: 'eventsKey',
  eventsIndexRange: 'eventAt',
  ttlAttribute: 'ttl',
} as const;

/** The attributes a listing filters on, kept in the index so a filter needs no read of the record. */
export const LIST_INDEX_ATTRIBUTES = ['status', 'system', 'caller', 'key'];

const LIST_INDEX = {
  IndexName: TABLE_KEYS.listIndex,
  KeySchema: [
    { AttributeName: TABLE_KEYS.listIndexHash, KeyType: 'HASH' as const },
    { AttributeName: TABLE_KEYS.listIndexRange, KeyType: 'RANGE' as const },
  ],
  Projection: { ProjectionType: 'INCLUDE' as const, NonKeyAttributes: LIST_INDEX_ATTRIBUTES },
};

const EVENTS_INDEX = {
  IndexName: TABLE_KEYS.eventsIndex,
  KeySchema: [
    { AttributeName: TABLE_KEYS.eventsIndexHash, KeyType: 'HASH' as const },
    { AttributeName: TABLE_KEYS.eventsIndexRange, KeyType: 'RANGE' as const },
  ],
  Projection: { ProjectionType: 'KEYS_ONLY' as const },
};

export async function ensureTable(client: DynamoDBClient, tableName: string, waitMs = 10_000): Promise<{ listIndexAdded: boolean }> {
  try {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    if (Table?.TableStatus !== 'ACTIVE') {
      // Created by a process that ended before the table turned ACTIVE: wait as for our own (below).
      await untilActive(client, tableName, waitMs);
    }
    // A local table kept from before the listing index (issue 22) or the events index (issue 21) gets it
    // now, one index per UpdateTable as DynamoDB requires; the listing's records are written again at boot
    // (shared/local/reindex.ts) so they appear in it (events are stamped by new writes only). In AWS the
    // template adds them.
    const have = new Set((Table?.GlobalSecondaryIndexes ?? []).map((i) => i.IndexName));
    const missing = [
      { index: LIST_INDEX, hash: TABLE_KEYS.listIndexHash, range: TABLE_KEYS.listIndexRange },
      { index: EVENTS_INDEX, hash: TABLE_KEYS.eventsIndexHash, range: TABLE_KEYS.eventsIndexRange },
    ].filter((m) => !have.has(m.index.IndexName));
    for (const m of missing) {
      await client.send(
        new UpdateTableCommand({
          TableName: tableName,
          AttributeDefinitions: [
            { AttributeName: m.hash, AttributeType: 'S' },
            { AttributeName: m.range, AttributeType: 'N' },
          ],
          GlobalSecondaryIndexUpdates: [{ Create: m.index }],
        }),
      );
      await untilActive(client, tableName, waitMs);
    }
    if (missing.some((m) => m.index === LIST_INDEX)) return { listIndexAdded: true };
    return { listIndexAdded: false };
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
        { AttributeName: TABLE_KEYS.listIndexHash, AttributeType: 'S' },
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
        LIST_INDEX,
        EVENTS_INDEX,
      ],
    }),
  );
  await untilActive(client, tableName, waitMs);
  // dynalite accepts but does not act on TTL; AWS does. Kept so the local table matches.
  await client
    .send(new UpdateTimeToLiveCommand({ TableName: tableName, TimeToLiveSpecification: { AttributeName: TABLE_KEYS.ttlAttribute, Enabled: true } }))
    .catch(() => undefined);
  return { listIndexAdded: false };
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
