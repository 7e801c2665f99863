import type { DynamoExchange } from '../../shared/local/dynamo-tap.js';
import { TABLE_KEYS } from '../../shared/store/table.js';

/**
 * What each request that reached dynalite would cost on DynamoDB on-demand, from the requests and answers
 * themselves (dynalite does not report capacity unless asked, and counts string sizes in UTF-16 units).
 *
 * Rules, from the DynamoDB Developer Guide:
 * - item size: attribute names and values in UTF-8 bytes; a number is 1 byte per two significant digits
 *   plus 1; a boolean or null 1; a list or map 3 bytes plus 1 per element plus its elements
 *   ("DynamoDB item sizes and formats", CapacityUnitCalculations.html);
 * - a write: 1 write request unit per started KB of the larger of the item before and after
 *   ("DynamoDB read and write operations", read-write-operations.html);
 * - a read: 1 read request unit per started 4 KB when strongly consistent, half when eventually
 *   consistent (global secondary indexes are read eventually consistent only); a Query's items are
 *   summed before rounding, a BatchGetItem's are rounded one by one (same page);
 * - not checked against the guide here, and used only off the hot path: a conditional write whose
 *   condition fails is charged the existing item's size (at least one unit), and a read that finds
 *   nothing one unit (half when eventual);
 * - an index: a write that adds an item to an index costs one index write, one that removes it one,
 *   one that changes its index key two (delete and put, GSI.html "Writes"); one that leaves the index key
 *   and the projected attributes alone costs none. Both indexes here project keys only, so an index item
 *   is the table key plus the index key.
 */

type AttributeValue = Record<string, unknown>;
export type Item = Record<string, AttributeValue>;

const utf8 = (s: string) => Buffer.byteLength(s, 'utf8');

/** Significant digits of a DynamoDB number, leading and trailing zeros trimmed. */
function significantDigits(n: string): number {
  const digits = n.replace(/^[+-]/, '').replace(/e.*$/i, '').replace('.', '').replace(/^0+/, '').replace(/0+$/, '');
  return Math.max(1, digits.length);
}

export function valueSize(value: AttributeValue): number {
  const [type, v] = Object.entries(value)[0] ?? ['NULL', true];
  switch (type) {
    case 'S':
      return utf8(v as string);
    case 'N':
      return Math.ceil(significantDigits(v as string) / 2) + 1;
    case 'B':
      return Buffer.from(v as string, 'base64').length;
    case 'BOOL':
    case 'NULL':
      return 1;
    case 'SS':
      return (v as string[]).reduce((sum, s) => sum + utf8(s), 0);
    case 'NS':
      return (v as string[]).reduce((sum, s) => sum + Math.ceil(significantDigits(s) / 2) + 1, 0);
    case 'BS':
      return (v as string[]).reduce((sum, s) => sum + Buffer.from(s, 'base64').length, 0);
    case 'L':
      return 3 + (v as AttributeValue[]).reduce((sum, e) => sum + 1 + valueSize(e), 0);
    case 'M':
      return 3 + Object.entries(v as Item).reduce((sum, [k, e]) => sum + 1 + utf8(k) + valueSize(e), 0);
    default:
      throw new Error(`an attribute type the meter does not size: ${type}`);
  }
}

export function itemSize(item: Item | undefined): number {
  if (!item) return 0;
  return Object.entries(item).reduce((sum, [name, value]) => sum + utf8(name) + valueSize(value), 0);
}

export const writeUnits = (bytes: number) => Math.max(1, Math.ceil(bytes / 1024));
export const readUnits = (bytes: number, consistent: boolean) => Math.max(1, Math.ceil(bytes / 4096)) * (consistent ? 1 : 0.5);

export const INDEXES = [
  { name: TABLE_KEYS.dueIndex, hash: TABLE_KEYS.dueIndexHash, range: TABLE_KEYS.dueIndexRange },
  { name: TABLE_KEYS.statusIndex, hash: TABLE_KEYS.statusIndexHash, range: TABLE_KEYS.statusIndexRange },
] as const;

/** The index key of `item` in `index` ("hash|range"), or undefined when the item is not in that (sparse) index. */
function indexKey(item: Item | undefined, index: (typeof INDEXES)[number]): string | undefined {
  const h = item?.[index.hash];
  const r = item?.[index.range];
  if (!h || !r) return undefined;
  return `${JSON.stringify(h)}|${JSON.stringify(r)}`;
}

/** A KEYS_ONLY index item: the table key and the index key. */
function indexItemSize(item: Item, index: (typeof INDEXES)[number]): number {
  const keys: Item = {};
  for (const a of [TABLE_KEYS.partitionKey, index.hash, index.range]) if (item[a]) keys[a] = item[a] as AttributeValue;
  return itemSize(keys);
}

export interface IndexWrite {
  index: string;
  /** The index partition written (the hash key's value), e.g. `cambio#due#3`. */
  partition: string;
  kind: 'put' | 'delete';
  units: number;
}

export interface Charge {
  operation: string;
  /** The table key of the item written or read (the first, for batch reads). */
  pk?: string;
  /** Whether DynamoDB carried it out (a failed condition is still charged). */
  ok: boolean;
  tableWrite: number;
  tableRead: number;
  indexWrites: IndexWrite[];
  indexRead: number;
  /** Size of the item after a write, or of what a read returned. */
  bytes: number;
  /** Size of the item before a write. */
  bytesBefore?: number;
}

const unmarshalledS = (v: AttributeValue | undefined) => (v && typeof v.S === 'string' ? v.S : undefined);

/**
 * `SET` expressions of plain top-level attributes, each `= :value` or `= if_not_exists(name, :value)`:
 * the only update forms this code base sends (fence consumption, webhook answers). Any other form is
 * refused rather than guessed at, so the meter cannot silently miscount a new one.
 */
function applyUpdate(before: Item | undefined, request: Record<string, unknown>): Item {
  const expression = request.UpdateExpression;
  if (typeof expression !== 'string' || !/^\s*SET\s/i.test(expression) || /\b(REMOVE|ADD|DELETE)\b/.test(expression)) {
    throw new Error(`an update expression the meter does not model: ${String(expression)}`);
  }
  const names = (request.ExpressionAttributeNames ?? {}) as Record<string, string>;
  const values = (request.ExpressionAttributeValues ?? {}) as Record<string, AttributeValue>;
  const name = (token: string) => (token.startsWith('#') ? names[token] : token);
  const after: Item = { ...(before ?? (request.Key as Item)) };
  for (const part of expression.replace(/^\s*SET\s+/i, '').split(/,(?![^(]*\))/)) {
    const m = /^\s*(#?[\w-]+)\s*=\s*(?:(:[\w-]+)|if_not_exists\(\s*(#?[\w-]+)\s*,\s*(:[\w-]+)\s*\))\s*$/.exec(part);
    if (!m) throw new Error(`an update clause the meter does not model: ${part}`);
    const target = name(m[1] as string);
    if (!target) throw new Error(`an update names an attribute it does not define: ${m[1]}`);
    if (m[2]) after[target] = values[m[2]] as AttributeValue;
    else if (!(name(m[3] as string) as string in after)) after[target] = values[m[4] as string] as AttributeValue;
  }
  return after;
}

/**
 * Replays the requests that reached dynalite against a shadow of the table (every write passes through
 * here, so the shadow holds what DynamoDB would hold) and prices each one. Give it every exchange since
 * the table was created, in the order dynalite answered them.
 */
export class CapacityMeter {
  private readonly items = new Map<string, Item>();

  charge(exchange: DynamoExchange): Charge {
    const { operation, request, status } = exchange;
    const ok = status === 200;
    const base: Charge = { operation, ok, tableWrite: 0, tableRead: 0, indexWrites: [], indexRead: 0, bytes: 0 };
    if (operation === 'PutItem' || operation === 'UpdateItem') {
      const key = (operation === 'PutItem' ? (request.Item as Item) : (request.Key as Item))[TABLE_KEYS.partitionKey];
      const pk = unmarshalledS(key);
      if (!pk) throw new Error(`a ${operation} without a string ${TABLE_KEYS.partitionKey}`);
      const before = this.items.get(pk);
      if (!ok) {
        // A refused condition costs the existing item's size (at least one unit); nothing changes.
        return { ...base, pk, tableWrite: writeUnits(itemSize(before)), bytes: itemSize(before), bytesBefore: itemSize(before) };
      }
      const after = operation === 'PutItem' ? (request.Item as Item) : applyUpdate(before, request);
      this.items.set(pk, after);
      const indexWrites: IndexWrite[] = [];
      for (const index of INDEXES) {
        const was = indexKey(before, index);
        const is = indexKey(after, index);
        if (was === is) continue;
        if (was && before) indexWrites.push({ index: index.name, partition: unmarshalledS(before[index.hash]) ?? '?', kind: 'delete', units: writeUnits(indexItemSize(before, index)) });
        if (is) indexWrites.push({ index: index.name, partition: unmarshalledS(after[index.hash]) ?? '?', kind: 'put', units: writeUnits(indexItemSize(after, index)) });
      }
      const bytes = itemSize(after);
      return { ...base, pk, tableWrite: writeUnits(Math.max(itemSize(before), bytes)), indexWrites, bytes, bytesBefore: itemSize(before) };
    }
    if (!ok) return base;
    const answer = exchange.response ? (JSON.parse(exchange.response) as Record<string, unknown>) : {};
    if (operation === 'GetItem') {
      const item = answer.Item as Item | undefined;
      const bytes = itemSize(item);
      return { ...base, pk: unmarshalledS((request.Key as Item)[TABLE_KEYS.partitionKey]), tableRead: readUnits(bytes, request.ConsistentRead === true), bytes };
    }
    if (operation === 'BatchGetItem') {
      let units = 0;
      let bytes = 0;
      const asked = request.RequestItems as Record<string, { ConsistentRead?: boolean; Keys: Item[] }>;
      const got = (answer.Responses ?? {}) as Record<string, Item[]>;
      for (const [table, spec] of Object.entries(asked)) {
        const found = got[table] ?? [];
        // Each key is read as its own item; a key not found is charged as one minimal read.
        for (const item of found) units += readUnits(itemSize(item), spec.ConsistentRead === true);
        units += Math.max(0, spec.Keys.length - found.length) * readUnits(0, spec.ConsistentRead === true);
        bytes += found.reduce((sum, item) => sum + itemSize(item), 0);
      }
      return { ...base, tableRead: units, bytes };
    }
    if (operation === 'Query') {
      const bytes = ((answer.Items ?? []) as Item[]).reduce((sum, item) => sum + itemSize(item), 0);
      const onIndex = typeof request.IndexName === 'string';
      const units = readUnits(bytes, !onIndex && request.ConsistentRead === true);
      return onIndex ? { ...base, indexRead: units, bytes } : { ...base, tableRead: units, bytes };
    }
    // Table management and anything else is not request-priced.
    return base;
  }

  /** The shadow's copy of an item (the measurement script prints record sizes from it). */
  item(pk: string): Item | undefined {
    return this.items.get(pk);
  }
}
