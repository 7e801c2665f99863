import { BatchGetCommand, PutCommand, QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { randomBytes } from 'node:crypto';
import type { PaymentRecord, Status } from '../core/types.js';
import { LIST_PARTS } from './indexes.js';
import { TABLE_KEYS } from './table.js';

/**
 * Payments newest first through the listing index (`list-index`, shared/store/table.ts), for the console
 * and `paybridge payments list` (issue 22). A page costs at most two Queries (one per partition the
 * filter needs) and one BatchGetItem for the records of the page, whatever the filter: status,
 * system, caller and key prefix are filter expressions over the attributes the index keeps, time is
 * the sort key's range. A filter that matches little can therefore give a short page (even an empty
 * one) with a cursor: the part of the index it read had no more, and the cursor goes on from there.
 */

export interface BrowseFilter {
  statuses?: Status[];
  systems?: string[];
  caller?: string;
  keyPrefix?: string;
  /** Epoch ms, inclusive. */
  since?: number;
  until?: number;
}

export interface BrowsePage {
  records: PaymentRecord[];
  cursor?: string;
  /** The DynamoDB requests this page cost (Queries, then BatchGetItems). */
  requests: { query: number; batchGet: number };
}

type Position = [number, string] | 'done';
interface CursorState {
  f: BrowseFilter;
  p: Record<string, Position>;
}

/** Index items a filtered Query reads (before its filter): what one Query of a page costs at most. */
export const FILTERED_READ = 1_000;

/** Queries one page may make: with its one BatchGetItem, three requests at most. */
export const MAX_QUERIES_PER_PAGE = 2;

export function encodeBrowseCursor(state: CursorState): string {
  return Buffer.from(JSON.stringify(state), 'utf8').toString('base64url');
}

/** The filter and positions a cursor carries; throws a RangeError for one that is not ours. */
export function decodeBrowseCursor(text: string): CursorState {
  try {
    const state = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as CursorState;
    if (state && typeof state.f === 'object' && state.f !== null && typeof state.p === 'object' && state.p !== null) return state;
  } catch {
    // reported below
  }
  throw new RangeError('the cursor is not one this listing gave');
}

/** The index partitions a filter needs: posted payments, the others, or both. */
export function partsFor(filter: BrowseFilter): string[] {
  const statuses = filter.statuses && filter.statuses.length > 0 ? filter.statuses : undefined;
  if (!statuses) return [LIST_PARTS.posted, LIST_PARTS.open];
  const parts: string[] = [];
  if (statuses.includes('posted')) parts.push(LIST_PARTS.posted);
  if (statuses.some((s) => s !== 'posted')) parts.push(LIST_PARTS.open);
  return parts;
}

interface Expression {
  key: string;
  filter?: string;
  names: Record<string, string>;
  values: Record<string, unknown>;
}

export function expressionFor(part: string, filter: BrowseFilter): Expression {
  const names: Record<string, string> = { '#p': TABLE_KEYS.listIndexHash };
  const values: Record<string, unknown> = { ':p': part };
  let key = '#p = :p';
  if (filter.since !== undefined || filter.until !== undefined) {
    names['#t'] = TABLE_KEYS.listIndexRange;
    if (filter.since !== undefined && filter.until !== undefined) {
      key += ' AND #t BETWEEN :since AND :until';
      values[':since'] = filter.since;
      values[':until'] = filter.until;
    } else if (filter.since !== undefined) {
      key += ' AND #t >= :since';
      values[':since'] = filter.since;
    } else {
      key += ' AND #t <= :until';
      values[':until'] = filter.until;
    }
  }
  const conditions: string[] = [];
  const open = (filter.statuses ?? []).filter((s) => s !== 'posted');
  // Only the open partition mixes statuses; every status of it named means no condition at all.
  if (part === LIST_PARTS.open && open.length > 0 && open.length < 5) {
    names['#status'] = 'status';
    conditions.push(`#status IN (${open.map((s, i) => ((values[`:st${i}`] = s), `:st${i}`)).join(', ')})`);
  }
  if (filter.systems && filter.systems.length > 0) {
    names['#system'] = 'system';
    conditions.push(`#system IN (${filter.systems.map((s, i) => ((values[`:sy${i}`] = s), `:sy${i}`)).join(', ')})`);
  }
  if (filter.caller) {
    names['#caller'] = 'caller';
    values[':caller'] = filter.caller;
    conditions.push('#caller = :caller');
  }
  if (filter.keyPrefix) {
    names['#key'] = 'key';
    values[':prefix'] = filter.keyPrefix;
    conditions.push('begins_with(#key, :prefix)');
  }
  return { key, names, values, ...(conditions.length > 0 ? { filter: conditions.join(' AND ') } : {}) };
}

interface IndexItem {
  pk: string;
  at: number;
  part: string;
}

/** One page of at most `limit` payments matching `filter` (or the cursor's), newest first. */
export async function browsePayments(doc: DynamoDBDocumentClient, tableName: string, opts: { filter?: BrowseFilter; cursor?: string; limit: number }): Promise<BrowsePage> {
  const state: CursorState = opts.cursor ? decodeBrowseCursor(opts.cursor) : { f: opts.filter ?? {}, p: {} };
  const filter = state.f;
  const limit = Math.max(1, Math.min(1000, Math.floor(opts.limit)));
  const requests = { query: 0, batchGet: 0 };
  const parts = partsFor(filter).filter((p) => state.p[p] !== 'done');
  const found = new Map<string, { items: IndexItem[]; last?: Record<string, unknown> }>();

  const query = async (part: string) => {
    const expr = expressionFor(part, filter);
    const had = found.get(part);
    const pos = had ? undefined : state.p[part];
    const start = had?.last ?? (Array.isArray(pos) ? { [TABLE_KEYS.listIndexHash]: part, [TABLE_KEYS.listIndexRange]: pos[0], pk: pos[1] } : undefined);
    requests.query++;
    const out = await doc.send(
      new QueryCommand({
        TableName: tableName,
        IndexName: TABLE_KEYS.listIndex,
        KeyConditionExpression: expr.key,
        ...(expr.filter ? { FilterExpression: expr.filter } : {}),
        ExpressionAttributeNames: expr.names,
        ExpressionAttributeValues: expr.values,
        ScanIndexForward: false,
        // Without a filter every item read is a match: read one page's worth and one more, so a page that
        // ends the list says so (DynamoDB gives a last key whenever it stops at its Limit, even with
        // nothing after it). With a filter, read FILTERED_READ index items (about 100 KB): a rare match
        // is found within a few pages, and a page's cost stays bounded (a full 1 MB Query took about a
        // second on dynalite).
        Limit: expr.filter ? Math.max(FILTERED_READ, limit + 1) : limit + 1,
        ...(start ? { ExclusiveStartKey: start } : {}),
      }),
    );
    const items = (out.Items ?? [])
      // The Kontantanalys run keeps its summary as a record (`run:latest`): not a payment.
      .filter((i) => !(i.system === 'kontantanalys' && String(i.key).startsWith('run:')))
      .map((i) => ({ pk: String(i.pk), at: Number(i.createdMs), part }));
    found.set(part, { items: [...(had?.items ?? []), ...items], ...(out.LastEvaluatedKey ? { last: out.LastEvaluatedKey } : {}) });
  };

  await Promise.all(parts.map(query));
  // One partition alone may use the second Query when the first left the page short.
  const only = parts.length === 1 ? parts[0] : undefined;
  if (only !== undefined && requests.query < MAX_QUERIES_PER_PAGE && (found.get(only)?.items.length ?? 0) < limit && found.get(only)?.last) await query(only);

  // A partition with more to read has been read down to its last evaluated key: an item of another
  // partition older than that could be overtaken by one not yet read, so the page stops there.
  let horizon = -Infinity;
  for (const [, f] of found) if (f.last) horizon = Math.max(horizon, Number(f.last[TABLE_KEYS.listIndexRange]));
  const merged = [...found.values()]
    .flatMap((f) => f.items)
    .sort((a, b) => b.at - a.at || (a.pk < b.pk ? 1 : -1))
    .filter((i) => i.at >= horizon || !Number.isFinite(horizon));
  const taken = merged.slice(0, limit);

  const next: CursorState = { f: filter, p: { ...state.p } };
  for (const part of parts) {
    const f = found.get(part) as { items: IndexItem[]; last?: Record<string, unknown> };
    const mine = taken.filter((t) => t.part === part);
    const lastTaken = mine[mine.length - 1];
    if (mine.length === f.items.length) {
      // Everything read was shown: go on after what was read (a filter may have read past its matches).
      next.p[part] = f.last ? [Number(f.last[TABLE_KEYS.listIndexRange]), String(f.last.pk)] : 'done';
    } else if (lastTaken) next.p[part] = [lastTaken.at, lastTaken.pk];
  }
  const more = parts.some((p) => next.p[p] !== 'done');

  const records: PaymentRecord[] = [];
  if (taken.length > 0) {
    const byPk = new Map<string, PaymentRecord>();
    for (let i = 0; i < taken.length; i += 100) {
      let keys: Record<string, unknown>[] = taken.slice(i, i + 100).map((t) => ({ pk: t.pk }));
      for (let round = 0; round < 5 && keys.length > 0; round++) {
        requests.batchGet++;
        const out = await doc.send(new BatchGetCommand({ RequestItems: { [tableName]: { Keys: keys } } }));
        for (const item of out.Responses?.[tableName] ?? []) byPk.set(String(item.pk), item as PaymentRecord);
        keys = (out.UnprocessedKeys?.[tableName]?.Keys ?? []) as Record<string, unknown>[];
      }
    }
    for (const t of taken) {
      const r = byPk.get(t.pk);
      if (r) records.push(r);
    }
  }
  return { records, ...(more ? { cursor: encodeBrowseCursor(next) } : {}), requests };
}

/** One operator action, as the audit log keeps it (DESIGN.md: who, when, what, why, result). */
export interface AuditEntry {
  id: string;
  at: string;
  who: string;
  role: string;
  action: string;
  system: string;
  key: string;
  reason: string;
  evidence?: string;
  ok: boolean;
  result: string;
  /** The payment's status after the action (when it was done). */
  status?: string;
  /** What the preview said before the action. */
  mayHold?: string;
  will?: string;
  /** Bulk runs: the run's id. */
  bulk?: string;
}

/**
 * The audit log, in the records table: one item per action (`audit#<ms>#<random>`), in the listing
 * index's `audit` partition, with the record TTL so it is kept as long as the records are.
 */
export class AuditLog {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly ttlDays: number,
    private readonly clock: () => number = Date.now,
  ) {}

  async append(entry: Omit<AuditEntry, 'id' | 'at'>): Promise<AuditEntry> {
    const now = this.clock();
    const id = `audit#${String(now).padStart(15, '0')}#${randomBytes(6).toString('hex')}`;
    const full: AuditEntry = { id, at: new Date(now).toISOString(), ...entry };
    await this.doc.send(
      new PutCommand({
        TableName: this.tableName,
        Item: { ...full, pk: id, [TABLE_KEYS.listIndexHash]: LIST_PARTS.audit, [TABLE_KEYS.listIndexRange]: now, ttl: Math.floor(now / 1000) + this.ttlDays * 86_400 },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
    return full;
  }

  /** Newest first; of one payment when `of` is given. One Query and one BatchGetItem a page. */
  async list(opts: { limit: number; cursor?: string; of?: { system: string; key: string } }): Promise<{ entries: AuditEntry[]; cursor?: string }> {
    const names: Record<string, string> = { '#p': TABLE_KEYS.listIndexHash };
    const values: Record<string, unknown> = { ':p': LIST_PARTS.audit };
    let filter: string | undefined;
    if (opts.of) {
      Object.assign(names, { '#system': 'system', '#key': 'key' });
      Object.assign(values, { ':system': opts.of.system, ':key': opts.of.key });
      filter = '#system = :system AND #key = :key';
    }
    let start: Record<string, unknown> | undefined;
    if (opts.cursor) {
      try {
        start = JSON.parse(Buffer.from(opts.cursor, 'base64url').toString('utf8')) as Record<string, unknown>;
      } catch {
        throw new RangeError('the cursor is not one this listing gave');
      }
    }
    const out = await this.doc.send(
      new QueryCommand({
        TableName: this.tableName,
        IndexName: TABLE_KEYS.listIndex,
        KeyConditionExpression: '#p = :p',
        ...(filter ? { FilterExpression: filter } : { Limit: Math.max(1, Math.min(1000, opts.limit)) }),
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
        ScanIndexForward: false,
        ...(start ? { ExclusiveStartKey: start } : {}),
      }),
    );
    const pks = (out.Items ?? []).slice(0, opts.limit).map((i) => String(i.pk));
    const entries: AuditEntry[] = [];
    if (pks.length > 0) {
      const got = await this.doc.send(new BatchGetCommand({ RequestItems: { [this.tableName]: { Keys: pks.slice(0, 100).map((pk) => ({ pk })) } } }));
      const byPk = new Map((got.Responses?.[this.tableName] ?? []).map((i) => [String(i.pk), i]));
      for (const pk of pks) {
        const item = byPk.get(pk);
        if (!item) continue;
        const { pk: _pk, listPart: _l, createdMs: _c, ttl: _t, ...entry } = item;
        entries.push(entry as AuditEntry);
      }
    }
    const last = (out.Items ?? []).length > opts.limit ? out.Items?.[opts.limit - 1] : undefined;
    const cursorKey = last ? { pk: last.pk, [TABLE_KEYS.listIndexHash]: LIST_PARTS.audit, [TABLE_KEYS.listIndexRange]: last.createdMs } : out.LastEvaluatedKey;
    return { entries, ...(cursorKey ? { cursor: Buffer.from(JSON.stringify(cursorKey), 'utf8').toString('base64url') } : {}) };
  }
}
