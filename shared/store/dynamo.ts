import { ConditionalCheckFailedException, DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { Config } from '../config.js';
import { EMPTY_LIMITER, type LimiterState } from '../core/pacing.js';
import type { PaymentRecord, Status } from '../core/types.js';
import { stampForWrite } from '../events/model.js';
import { dueShardName, statusShardName, withIndexes, type DueKind } from './indexes.js';
import type { ClaimResult, FenceStore, LimiterStore, ListPage, RecordStore, WebhookStore } from './port.js';
import { TABLE_KEYS } from './table.js';
import { browsePayments, type BrowseFilter, type BrowsePage } from './browse.js';

import { documentClient, makeDynamoClient } from './client.js';
import { DynamoWebhookStore } from './webhooks.js';

export { documentClient, makeDynamoClient };

function isConditionFailure(err: unknown): err is ConditionalCheckFailedException {
  return err instanceof ConditionalCheckFailedException || (err as Error | undefined)?.name === 'ConditionalCheckFailedException';
}

/** DynamoDB refuses items over 400 KB; stay well under it so a settle write can never fail for size (issue 10). */
const ITEM_BUDGET_BYTES = 350_000;

/**
 * The record as written: if it would not fit, the oldest history, earlier revisions and a large result
 * body give way (each marked), never the request or the status.
 */
export function fitItem(record: PaymentRecord): PaymentRecord {
  let size = Buffer.byteLength(JSON.stringify(record), 'utf8');
  if (size <= ITEM_BUDGET_BYTES) return record;
  let fitted: PaymentRecord = { ...record, history: record.history.slice(-5), ...(record.revisions ? { revisions: record.revisions.slice(-3) } : {}) };
  size = Buffer.byteLength(JSON.stringify(fitted), 'utf8');
  if (size > ITEM_BUDGET_BYTES && fitted.result) {
    fitted = { ...fitted, result: { ...fitted.result, body: { truncated: true, note: 'the downstream body was too large to keep with the record' } } };
  }
  return fitted;
}

interface Cursor {
  /** Per shard: the index key of the last record handed out, or 'done'. */
  s: Record<string, [number, string] | 'done'>;
}

function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify(c), 'utf8').toString('base64url');
}

function decodeCursor(text: string | undefined): Cursor {
  if (!text) return { s: {} };
  try {
    const parsed = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as Cursor;
    if (parsed && typeof parsed.s === 'object') return parsed;
  } catch {
    // reported below
  }
  throw new RangeError('the cursor is not one this command printed');
}

/**
 * The owner half of a record write's condition (issue 20, item 1): the item there must belong to the
 * caller of the record being written, or to nobody (a record stored before callers were). The version
 * alone did not stop a writer that read another caller's record from replacing it as its own; with the
 * caller in the condition, such a write fails like a lost race, whatever was read before it. A record
 * written without a caller may only replace one without a caller: no ownerless write changes an owned record.
 */
export function ownerCondition(record: Pick<PaymentRecord, 'caller'>): { expression: string; values: Record<string, string> } {
  if (record.caller === undefined) return { expression: 'attribute_not_exists(#caller)', values: {} };
  return { expression: '(attribute_not_exists(#caller) OR #caller = :caller)', values: { ':caller': record.caller } };
}

export class DynamoRecordStore implements RecordStore {
  private readonly doc: DynamoDBDocumentClient;

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
    private readonly shards = 8,
    private readonly clock: () => number = Date.now,
  ) {
    this.doc = documentClient(client);
  }

  private item(record: PaymentRecord): PaymentRecord {
    // The settlement event (if this write causes one) goes in this same conditional write: the outbox (issue 21).
    return fitItem(withIndexes(stampForWrite(record, this.clock()), this.shards, this.clock()));
  }

  async claim(record: PaymentRecord): Promise<ClaimResult> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.tableName,
          Item: this.item(record),
          ConditionExpression: 'attribute_not_exists(pk)',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return { claimed: true };
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      // DynamoDB returns the old item with the failure; dynalite does not, so fall back to a read.
      const old = err.Item ? (unmarshall(err.Item) as PaymentRecord) : await this.get(record.pk);
      if (!old) throw new Error(`claim of ${record.system} record failed its condition but the record cannot be read`);
      return { claimed: false, existing: old };
    }
  }

  async get(pk: string): Promise<PaymentRecord | undefined> {
    const out = await this.doc.send(new GetCommand({ TableName: this.tableName, Key: { pk }, ConsistentRead: true }));
    return out.Item as PaymentRecord | undefined;
  }

  async getMany(pks: readonly string[]): Promise<Map<string, PaymentRecord>> {
    const found = new Map<string, PaymentRecord>();
    const unique = [...new Set(pks)];
    for (let i = 0; i < unique.length; i += 100) {
      let keys: Record<string, unknown>[] = unique.slice(i, i + 100).map((pk) => ({ pk }));
      // Unprocessed keys (throttling) are asked again, a bounded number of times.
      for (let round = 0; round < 5 && keys.length > 0; round++) {
        const out = await this.doc.send(new BatchGetCommand({ RequestItems: { [this.tableName]: { Keys: keys, ConsistentRead: true } } }));
        for (const item of out.Responses?.[this.tableName] ?? []) found.set(String(item.pk), item as PaymentRecord);
        keys = (out.UnprocessedKeys?.[this.tableName]?.Keys ?? []) as Record<string, unknown>[];
      }
      if (keys.length > 0) throw new Error(`${keys.length} records could not be read after 5 rounds of BatchGetItem`);
    }
    return found;
  }

  async replace(record: PaymentRecord, expectedVersion: number): Promise<boolean> {
    const owner = ownerCondition(record);
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { ...this.item(record), version: expectedVersion + 1 },
          ConditionExpression: `#v = :v AND ${owner.expression}`,
          ExpressionAttributeNames: { '#v': 'version', '#caller': 'caller' },
          ExpressionAttributeValues: { ':v': expectedVersion, ...owner.values },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  browse(opts: { filter?: BrowseFilter; cursor?: string; limit: number }): Promise<BrowsePage> {
    return browsePayments(this.doc, this.tableName, opts);
  }

  async due(system: string, before: number, limit: number, kind: DueKind = 'due', after?: number): Promise<{ pk: string; at: number }[]> {
    const perShard = await Promise.all(
      Array.from({ length: this.shards }, async (_, shard) => {
        const found: { pk: string; at: number }[] = [];
        let startKey: Record<string, unknown> | undefined;
        do {
          const out = await this.doc.send(
            new QueryCommand({
              TableName: this.tableName,
              IndexName: TABLE_KEYS.dueIndex,
              KeyConditionExpression: after === undefined ? '#s = :s AND #n <= :t' : '#s = :s AND #n BETWEEN :a AND :t',
              ExpressionAttributeNames: { '#s': TABLE_KEYS.dueIndexHash, '#n': TABLE_KEYS.dueIndexRange },
              ExpressionAttributeValues: { ':s': dueShardName(system, kind, shard), ':t': before, ...(after === undefined ? {} : { ':a': after }) },
              Limit: Math.min(100, limit - found.length),
              ExclusiveStartKey: startKey,
            }),
          );
          for (const item of out.Items ?? []) found.push({ pk: String(item.pk), at: Number(item.nextAttemptAt) });
          startKey = out.LastEvaluatedKey;
        } while (startKey && found.length < limit);
        return found;
      }),
    );
    return perShard
      .flat()
      .sort((a, b) => a.at - b.at)
      .slice(0, limit);
  }

  async list(system: string, status: Status, opts: { limit: number; cursor?: string; since?: number }): Promise<ListPage> {
    const cursor = decodeCursor(opts.cursor);
    const limit = Math.max(1, Math.min(1000, opts.limit));
    const pages = await Promise.all(
      Array.from({ length: this.shards }, async (_, shard) => {
        const pos = cursor.s[shard];
        if (pos === 'done') return { shard, items: [] as { pk: string; at: number }[], more: false };
        const name = statusShardName(system, status, shard);
        const out = await this.doc.send(
          new QueryCommand({
            TableName: this.tableName,
            IndexName: TABLE_KEYS.statusIndex,
            KeyConditionExpression: opts.since !== undefined ? '#h = :h AND #r >= :since' : '#h = :h',
            ExpressionAttributeNames: { '#h': TABLE_KEYS.statusIndexHash, ...(opts.since !== undefined ? { '#r': TABLE_KEYS.statusIndexRange } : {}) },
            ExpressionAttributeValues: { ':h': name, ...(opts.since !== undefined ? { ':since': opts.since } : {}) },
            ScanIndexForward: false,
            Limit: limit,
            ExclusiveStartKey: pos ? { [TABLE_KEYS.statusIndexHash]: name, [TABLE_KEYS.statusIndexRange]: pos[0], pk: pos[1] } : undefined,
          }),
        );
        return { shard, items: (out.Items ?? []).map((i) => ({ pk: String(i.pk), at: Number(i.createdMs) })), more: out.LastEvaluatedKey !== undefined };
      }),
    );
    const merged = pages
      .flatMap((p) => p.items.map((item) => ({ ...item, shard: p.shard })))
      .sort((a, b) => b.at - a.at || (a.pk < b.pk ? 1 : -1));
    const taken = merged.slice(0, limit);
    const next: Cursor = { s: { ...cursor.s } };
    let remaining = false;
    for (const page of pages) {
      const mine = taken.filter((t) => t.shard === page.shard);
      const last = mine[mine.length - 1];
      if (last) next.s[page.shard] = [last.at, last.pk];
      const untaken = page.items.length > mine.length;
      if (!untaken && !page.more && cursor.s[page.shard] !== 'done') next.s[page.shard] = 'done';
      if (untaken || page.more) remaining = true;
    }
    const records = await this.getMany(taken.map((t) => t.pk));
    // A record may have moved on since the index was read: list it only where it still belongs.
    const ordered = taken.map((t) => records.get(t.pk)).filter((r): r is PaymentRecord => r !== undefined && r.status === status);
    return { records: ordered, ...(remaining ? { cursor: encodeCursor(next) } : {}) };
  }
}

/**
 * The known sends as milliseconds from `recentFrom` (the schedule's next slot, whole): about R of them,
 * 3 bytes each instead of the 8 an epoch time takes, so the item stays within one write unit (1 KB)
 * up to a couple of hundred sends per second.
 */
function compactRecent(state: LimiterState): Omit<LimiterState, 'recent'> & { recent?: number[]; recentFrom?: number } {
  const { recent, ...rest } = state;
  if (!recent || recent.length === 0) return rest;
  const from = Math.floor(Number.isFinite(state.next) ? state.next : (recent[recent.length - 1] as number));
  return { ...rest, recentFrom: from, recent: recent.map((x) => Math.ceil(x) - from) };
}

/** The shared rate limiter's item per system (`limiter#<system>`): see core/pacing.ts. */
export class DynamoLimiterStore implements LimiterStore {
  private readonly doc: DynamoDBDocumentClient;

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
  ) {
    this.doc = documentClient(client);
  }

  async read(system: string): Promise<LimiterState> {
    const out = await this.doc.send(new GetCommand({ TableName: this.tableName, Key: { pk: `limiter#${system}` }, ConsistentRead: true }));
    if (!out.Item) return { ...EMPTY_LIMITER, lanes: {} };
    const { pk: _pk, recentFrom, recent, ...state } = out.Item as LimiterState & { pk: string; recentFrom?: number };
    // Items written by an earlier version of the limiter had other fields: start afresh from them.
    if (typeof state.ver !== 'number' || typeof state.next !== 'number') return { ...EMPTY_LIMITER, lanes: {}, ver: -1 };
    const known = Array.isArray(recent) ? recent.filter((x): x is number => typeof x === 'number').map((x) => (typeof recentFrom === 'number' ? recentFrom + x : x)) : [];
    return { ...EMPTY_LIMITER, ...state, lanes: state.lanes ?? {}, ...(known.length > 0 ? { recent: known } : {}) };
  }

  async write(system: string, state: LimiterState, expectedVer: number): Promise<boolean> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { ...compactRecent(state), pk: `limiter#${system}`, ver: Math.max(expectedVer, 0) + 1 },
          ...(expectedVer === 0
            ? { ConditionExpression: 'attribute_not_exists(pk)' }
            : expectedVer < 0
              ? { ConditionExpression: 'attribute_not_exists(ver)' }
              : { ConditionExpression: 'ver = :v', ExpressionAttributeValues: { ':v': expectedVer } }),
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }
}

/** Fences live 30 days: far beyond any attempt, so a consumed fence is never forgotten while it matters. */
const FENCE_TTL_SECONDS = 30 * 86_400;

export class DynamoFenceStore implements FenceStore {
  private readonly doc: DynamoDBDocumentClient;

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
    private readonly clock: () => number = Date.now,
  ) {
    this.doc = documentClient(client);
  }

  private async update(id: string, entries: readonly { n: number; deadline: number }[]): Promise<boolean> {
    const names: Record<string, string> = { '#ttl': 'ttl' };
    const values: Record<string, unknown> = { ':ttl': Math.floor(this.clock() / 1000) + FENCE_TTL_SECONDS };
    const sets = ['#ttl = if_not_exists(#ttl, :ttl)'];
    const conditions: string[] = [];
    entries.forEach((e, i) => {
      names[`#c${i}`] = `c${e.n}`;
      values[`:d${i}`] = e.deadline;
      sets.push(`#c${i} = :d${i}`);
      conditions.push(`attribute_not_exists(#c${i})`);
    });
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: `fence#${id}` },
          UpdateExpression: `SET ${sets.join(', ')}`,
          ConditionExpression: conditions.join(' AND '),
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  async consume(id: string, entries: readonly { n: number; deadline: number }[]): Promise<Set<number>> {
    const won = new Set<number>();
    // Each consume marks its deadlines with its own thousandths of a millisecond, so a write of ours whose
    // reply was lost (the SDK retried it and the retry found the counter set) is told from a consume by
    // another copy of the message: read back, the value is ours.
    const tag = 1 + Math.floor(Math.random() * 999);
    const marked = entries.map((e) => ({ n: e.n, deadline: Math.floor(e.deadline) + tag / 1_000 }));
    const ours = (seen: Map<number, number>, e: { n: number; deadline: number }) => Math.abs((seen.get(e.n) ?? NaN) - e.deadline) < 1e-4;
    // One write per 80 (DynamoDB's 4 KB expression limit holds about that many); only when some of a
    // chunk were taken before (a duplicate message) one write each for that chunk.
    // A write that failed with an error may still have been made (its reply lost): read back, and a
    // value with our mark is ours (issue 19's simulation: such a consume was thrown on, and a parking
    // system's payment was stranded as unknown though nothing had been sent).
    const update = async (chunk: typeof marked): Promise<boolean> => {
      try {
        return await this.update(id, chunk);
      } catch (err) {
        const seen = await this.inspect(id).catch(() => undefined);
        if (seen && chunk.every((e) => ours(seen, e))) return true;
        throw err;
      }
    };
    for (let i = 0; i < marked.length; i += 80) {
      const chunk = marked.slice(i, i + 80);
      if (await update(chunk)) {
        for (const e of chunk) won.add(e.n);
        continue;
      }
      const seen = await this.inspect(id);
      for (const e of chunk) {
        if (ours(seen, e)) won.add(e.n);
        else if (!seen.has(e.n) && ((await update([e])) || ours(await this.inspect(id), e))) won.add(e.n);
      }
    }
    return won;
  }

  async inspect(id: string): Promise<Map<number, number>> {
    const out = await this.doc.send(new GetCommand({ TableName: this.tableName, Key: { pk: `fence#${id}` }, ConsistentRead: true }));
    const consumed = new Map<number, number>();
    for (const [k, v] of Object.entries(out.Item ?? {})) {
      const m = /^c(\d+)$/.exec(k);
      if (m) consumed.set(Number(m[1]), Number(v));
    }
    return consumed;
  }
}

/** The deployed table's adapters (a handler passes this to awsDeps when its role grants the table). */
export function dynamoTable(config: Pick<Config, 'DYNAMODB_ENDPOINT' | 'AWS_REGION' | 'TABLE_NAME' | 'INDEX_SHARDS'>): { store: RecordStore; limiter: LimiterStore; fences: FenceStore; webhooks: WebhookStore } {
  const dynamo = makeDynamoClient({ endpoint: config.DYNAMODB_ENDPOINT, region: config.AWS_REGION });
  return {
    store: new DynamoRecordStore(dynamo, config.TABLE_NAME, config.INDEX_SHARDS),
    limiter: new DynamoLimiterStore(dynamo, config.TABLE_NAME),
    fences: new DynamoFenceStore(dynamo, config.TABLE_NAME),
    webhooks: new DynamoWebhookStore(dynamo, config.TABLE_NAME),
  };
}
