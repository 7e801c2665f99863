import { ConditionalCheckFailedException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { documentClient } from './client.js';
import type { DeliveryBinding, DeliveryClaim, DeliveryClaimRequest, StoredAnswer, WebhookStore } from './port.js';
import { TABLE_KEYS } from './table.js';

function isConditionFailure(err: unknown): boolean {
  return err instanceof ConditionalCheckFailedException || (err as Error | undefined)?.name === 'ConditionalCheckFailedException';
}

/**
 * Answers over this size are kept gzipped: a payment reply holds the record's view (history, the
 * downstream's answer), and the item, like a record, must stay under DynamoDB's 400 KB.
 */
const GZIP_FROM_BYTES = 64 * 1024;

/** One value for the whole binding, so the takeover condition compares it in one expression. */
function digestOf(binding: DeliveryBinding): string {
  // The query only when there is one: a delivery without one has the digest it had before the query was bound.
  const parts = [binding.route, binding.path, binding.clubId, binding.idempotencyKey, binding.patient, binding.body, ...(binding.query !== undefined ? [binding.query] : [])];
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

interface Item {
  pk: string;
  binding: DeliveryBinding;
  digest: string;
  owner: string;
  leaseUntil: number;
  receivedAt: string;
  ttl: number;
  answer?: { status: number; headers: Record<string, string>; body?: string; gzipped?: Uint8Array };
}

function decodeAnswer(stored: NonNullable<Item['answer']>): StoredAnswer {
  const body = stored.gzipped ? gunzipSync(Buffer.from(stored.gzipped)).toString('utf8') : (stored.body ?? '');
  return { status: Number(stored.status), headers: stored.headers ?? {}, body };
}

/**
 * The memory of webhook ids on DynamoDB: an item `webhook#<sender>#<id>` in the records table, written
 * with one conditional PutItem (the claim) and UpdateItems conditional on the owner (answer,
 * release). No index attribute is set, so the items never show in the sweep's or the listings' indexes.
 */
export class DynamoWebhookStore implements WebhookStore {
  private readonly doc: DynamoDBDocumentClient;

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
  ) {
    this.doc = documentClient(client);
  }

  private pk(sender: string, id: string): string {
    return `webhook#${sender}#${id}`;
  }

  async claim(request: DeliveryClaimRequest, now: number): Promise<DeliveryClaim> {
    const pk = this.pk(request.sender, request.id);
    const digest = digestOf(request.binding);
    const item: Item = {
      pk,
      binding: request.binding,
      digest,
      owner: request.owner,
      leaseUntil: request.leaseUntil,
      receivedAt: new Date(now).toISOString(),
      ttl: request.expiresAt,
    };
    // A few rounds at most: another round is needed only when the item expires or vanishes between the write and the read.
    for (let round = 0; round < 3; round++) {
      let old: ConditionalCheckFailedException['Item'];
      try {
        await this.doc.send(
          new PutCommand({
            TableName: this.tableName,
            Item: item,
            // DynamoDB deletes expired items lazily (within days): an expired one counts as forgotten here too.
            ConditionExpression: 'attribute_not_exists(pk) OR #ttl < :nowSec OR (attribute_not_exists(#answer) AND #lease < :now AND #digest = :digest)',
            ExpressionAttributeNames: { '#ttl': TABLE_KEYS.ttlAttribute, '#answer': 'answer', '#lease': 'leaseUntil', '#digest': 'digest' },
            ExpressionAttributeValues: { ':nowSec': Math.floor(now / 1000), ':now': now, ':digest': digest },
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          }),
        );
        return { claimed: true };
      } catch (err) {
        if (!isConditionFailure(err)) throw err;
        old = (err as ConditionalCheckFailedException).Item;
      }
      // DynamoDB returns the old item with the failure; dynalite does not (TOOLCHAIN.md), so read it then.
      const seen = (old ? unmarshall(old) : (await this.doc.send(new GetCommand({ TableName: this.tableName, Key: { pk }, ConsistentRead: true }))).Item) as Item | undefined;
      if (!seen || seen.ttl < Math.floor(now / 1000)) continue;
      return {
        claimed: false,
        binding: seen.binding,
        ...(seen.answer ? { answer: decodeAnswer(seen.answer) } : {}),
        leaseUntil: Number(seen.leaseUntil),
        receivedAt: seen.receivedAt,
      };
    }
    throw new Error('the webhook id could not be claimed nor read after 3 rounds');
  }

  private async update(sender: string, id: string, owner: string, expression: string, values: Record<string, unknown>, names: Record<string, string>): Promise<boolean> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: this.pk(sender, id) },
          UpdateExpression: expression,
          ConditionExpression: '#owner = :owner AND attribute_not_exists(#answer)',
          ExpressionAttributeNames: { '#owner': 'owner', '#answer': 'answer', ...names },
          ExpressionAttributeValues: { ':owner': owner, ...values },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  async answer(sender: string, id: string, owner: string, answer: StoredAnswer): Promise<boolean> {
    const big = Buffer.byteLength(answer.body, 'utf8') > GZIP_FROM_BYTES;
    // An empty body is left out rather than written as an empty string (older DynamoDB emulators refuse those).
    const body = big ? { gzipped: gzipSync(answer.body) } : answer.body === '' ? {} : { body: answer.body };
    const stored: Item['answer'] = { status: answer.status, headers: answer.headers, ...body };
    return this.update(sender, id, owner, 'SET #answer = :answer', { ':answer': stored }, {});
  }

  async release(sender: string, id: string, owner: string): Promise<boolean> {
    return this.update(sender, id, owner, 'SET #lease = :zero', { ':zero': 0 }, { '#lease': 'leaseUntil' });
  }
}
