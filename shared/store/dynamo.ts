import { ConditionalCheckFailedException, DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { PaymentRecord } from '../core/types.js';
import type { ClaimResult, RateLimiter, RecordStore, Slot } from './port.js';
import { TABLE_KEYS } from './table.js';

export function makeDynamoClient(opts: { endpoint?: string | undefined; region?: string | undefined } = {}): DynamoDBClient {
  const config: DynamoDBClientConfig = { region: opts.region ?? 'eu-north-1' };
  if (opts.endpoint) {
    // Local only (dynalite): it accepts any credentials.
    config.endpoint = opts.endpoint;
    config.credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
  }
  return new DynamoDBClient(config);
}

/**
 * One document-client setting for every adapter: `DynamoDBDocumentClient.from` stores its options on
 * the wrapped client's shared config, so two wrappers with different options overwrite each other.
 */
export function documentClient(client: DynamoDBClient): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
}

function isConditionFailure(err: unknown): err is ConditionalCheckFailedException {
  return err instanceof ConditionalCheckFailedException || (err as Error | undefined)?.name === 'ConditionalCheckFailedException';
}

export class DynamoRecordStore implements RecordStore {
  private readonly doc: DynamoDBDocumentClient;

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
  ) {
    this.doc = documentClient(client);
  }

  async claim(record: PaymentRecord): Promise<ClaimResult> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.tableName,
          Item: record,
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

  async replace(record: PaymentRecord, expectedVersion: number): Promise<boolean> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { ...record, version: expectedVersion + 1 },
          ConditionExpression: '#v = :v',
          ExpressionAttributeNames: { '#v': 'version' },
          ExpressionAttributeValues: { ':v': expectedVersion },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  async due(before: number, limit: number, shard: 'due' | 'held' | 'unknown' = 'due'): Promise<{ pk: string; at: number }[]> {
    const pks: { pk: string; at: number }[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const out = await this.doc.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: TABLE_KEYS.dueIndex,
          KeyConditionExpression: '#s = :due AND #n <= :t',
          ExpressionAttributeNames: { '#s': TABLE_KEYS.dueIndexHash, '#n': TABLE_KEYS.dueIndexRange },
          ExpressionAttributeValues: { ':due': shard, ':t': before },
          Limit: Math.min(100, limit - pks.length),
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of out.Items ?? []) pks.push({ pk: String(item.pk), at: Number(item.nextAttemptAt) });
      startKey = out.LastEvaluatedKey;
    } while (startKey && pks.length < limit);
    return pks;
  }

  async scan(pkPrefix: string): Promise<PaymentRecord[]> {
    const out: PaymentRecord[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.doc.send(
        new ScanCommand({
          TableName: this.tableName,
          FilterExpression: 'begins_with(pk, :p)',
          ExpressionAttributeValues: { ':p': pkPrefix },
          ConsistentRead: true,
          ExclusiveStartKey: startKey,
        }),
      );
      out.push(...((page.Items ?? []) as PaymentRecord[]));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return out;
  }
}

/**
 * A ticket-based schedule in one item per system (`limiter#<system>`): an atomic ADD hands out
 * ticket n, whose slot is `start + (n - 1) / perSecond`. No read-modify-write races, one write per
 * slot. A schedule left idle (the ticket's slot already in the past) or paused by a 429 is reset by
 * one conditional write that bumps `gen`, which invalidates slots reserved under the old schedule.
 */
export class DynamoRateLimiter implements RateLimiter {
  private readonly doc: DynamoDBDocumentClient;

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
  ) {
    this.doc = documentClient(client);
  }

  private key(system: string) {
    return { pk: `limiter#${system}` };
  }

  async reserve(system: string, perSecond: number, now: number): Promise<Slot> {
    const interval = 1000 / perSecond;
    for (let i = 0; i < 5; i++) {
      const out = await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: this.key(system),
          UpdateExpression: 'SET #g = if_not_exists(#g, :zero), #s = if_not_exists(#s, :now) ADD #n :one',
          ExpressionAttributeNames: { '#g': 'gen', '#s': 'start', '#n': 'n' },
          ExpressionAttributeValues: { ':zero': 0, ':now': now, ':one': 1 },
          ReturnValues: 'ALL_NEW',
        }),
      );
      const item = out.Attributes as { gen: number; start: number; n: number };
      const at = item.start + (item.n - 1) * interval;
      if (at >= now - interval) return { at: Math.max(at, now), gen: item.gen };
      // The schedule went idle: restart it at now. Whoever wins, every caller takes a fresh ticket.
      await this.reset(system, item.gen, now);
    }
    throw new Error(`rate limiter for ${system} could not settle a schedule after 5 tries`);
  }

  private async reset(system: string, gen: number, start: number): Promise<void> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: this.key(system),
          UpdateExpression: 'SET #s = :start, #n = :zero, #g = :next',
          ConditionExpression: '#g = :gen',
          ExpressionAttributeNames: { '#g': 'gen', '#s': 'start', '#n': 'n' },
          ExpressionAttributeValues: { ':start': start, ':zero': 0, ':gen': gen, ':next': gen + 1 },
        }),
      );
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
    }
  }

  async isCurrent(system: string, gen: number): Promise<boolean> {
    const out = await this.doc.send(new GetCommand({ TableName: this.tableName, Key: this.key(system), ConsistentRead: true }));
    return (out.Item?.gen as number | undefined) === gen;
  }

  async pause(system: string, until: number): Promise<void> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: this.key(system),
          UpdateExpression: 'SET #s = :until, #n = :zero, #p = :until ADD #g :one',
          // Only move the pause forward: a shorter wait seen by another worker must not shorten it.
          ConditionExpression: 'attribute_not_exists(#p) OR #p < :until',
          ExpressionAttributeNames: { '#g': 'gen', '#s': 'start', '#n': 'n', '#p': 'pausedUntil' },
          ExpressionAttributeValues: { ':until': until, ':zero': 0, ':one': 1 },
        }),
      );
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
    }
  }
}
