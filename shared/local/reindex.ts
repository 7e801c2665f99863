import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { PutCommand, ScanCommand, type ScanCommandOutput } from '@aws-sdk/lib-dynamodb';
import type { Logger } from '../log.js';
import { documentClient } from '../store/client.js';
import { listPartOf } from '../store/indexes.js';
import type { Status } from '../core/types.js';

/** Statuses whose records the sweep finds through the due index. */
const INDEXED_UNFINISHED = ['retrying', 'reconciling', 'held', 'unknown'];

/**
 * Local stack only, at boot on a kept data directory. dynalite writes an item's index entries and the
 * item itself as separate steps (DynamoDB does it atomically), so a process killed between them can
 * leave an unfinished payment that its due index no longer shows, and the sweep would never find it
 * again (seen in kill-and-restart runs). Every unfinished record is written again as it is, which
 * writes its index entries afresh. A Scan, once per start and before any request: the paths that run
 * in AWS never scan (issue 13), and this one does not run there.
 */
export async function reindexUnfinished(client: DynamoDBClient, tableName: string, log: Logger): Promise<number> {
  return rewriteScanned(client, tableName, log, {
    scan: {
      FilterExpression: '#s IN (:a, :b, :c, :d) AND attribute_exists(#v)',
      ExpressionAttributeNames: { '#s': 'status', '#v': 'version' },
      ExpressionAttributeValues: { ':a': INDEXED_UNFINISHED[0], ':b': INDEXED_UNFINISHED[1], ':c': INDEXED_UNFINISHED[2], ':d': INDEXED_UNFINISHED[3] },
    },
    rewrite: (item) => item,
    // Changed meanwhile (nothing should run yet): that write has written its index entries itself.
    failed: 'record not re-indexed at boot',
  });
}

/**
 * Local stack only, once: a data directory kept from before the listing index (issue 22) has payment
 * records without `listPart`; each is written again with it, so the console and `payments list` see it.
 * A Scan, like the one above, before any request and never in AWS (where a one-off backfill would do it).
 */
export async function indexForListing(client: DynamoDBClient, tableName: string, log: Logger): Promise<number> {
  return rewriteScanned(client, tableName, log, {
    scan: {
      FilterExpression: 'attribute_exists(#v) AND attribute_exists(#s) AND attribute_not_exists(#l)',
      ExpressionAttributeNames: { '#s': 'status', '#v': 'version', '#l': 'listPart' },
    },
    rewrite: (item) => ({ ...item, listPart: listPartOf(item.status as Status) }),
    failed: 'record not added to the listing index at boot',
  });
}

/**
 * Scans the records `scan` filters and writes each again as `rewrite` makes it, on the condition that
 * its version is unchanged; returns how many were written. A write that fails is logged as `failed`.
 */
async function rewriteScanned(
  client: DynamoDBClient,
  tableName: string,
  log: Logger,
  opts: { scan: { FilterExpression: string; ExpressionAttributeNames: Record<string, string>; ExpressionAttributeValues?: Record<string, unknown> }; rewrite: (item: Record<string, unknown>) => Record<string, unknown>; failed: string },
): Promise<number> {
  const doc = documentClient(client);
  let rewritten = 0;
  let start: Record<string, unknown> | undefined;
  // Bounded: a page holds at most 1 MB, and a local table of a million records is ten thousand pages.
  for (let page = 0; page < 10_000; page++) {
    const out: ScanCommandOutput = await doc.send(new ScanCommand({ TableName: tableName, ...opts.scan, ...(start ? { ExclusiveStartKey: start } : {}) }));
    for (const item of out.Items ?? []) {
      try {
        await doc.send(
          new PutCommand({
            TableName: tableName,
            Item: opts.rewrite(item),
            ConditionExpression: '#v = :v',
            ExpressionAttributeNames: { '#v': 'version' },
            ExpressionAttributeValues: { ':v': item.version },
          }),
        );
        rewritten++;
      } catch (err) {
        log.warn(opts.failed, { error: err });
      }
    }
    start = out.LastEvaluatedKey;
    if (!start) break;
  }
  return rewritten;
}
