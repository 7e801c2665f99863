import type { DynamoExchange } from '../../shared/local/dynamo-tap.js';
import { TABLE_KEYS } from '../../shared/store/table.js';

/**
 * The no-Scan rule of issue 13, over what reached DynamoDB: every read must name its partition, so its
 * cost does not grow with the table. A Scan reads every item; a Query must fix the partition key of the
 * table or index it reads by equality; anything else that is not addressed by key (PartiQL, a
 * transaction, an operation this table never needs) is reported too, so a new way of reading cannot
 * slip past the guard unexamined.
 */

/** The partition key of the table ('' ) and of each of its indexes. */
const PARTITION_KEY: Readonly<Record<string, string>> = {
  '': TABLE_KEYS.partitionKey,
  [TABLE_KEYS.dueIndex]: TABLE_KEYS.dueIndexHash,
  [TABLE_KEYS.statusIndex]: TABLE_KEYS.statusIndexHash,
  [TABLE_KEYS.listIndex]: TABLE_KEYS.listIndexHash,
  [TABLE_KEYS.eventsIndex]: TABLE_KEYS.eventsIndexHash,
};

/** Operations that address items by their full key, or manage the table itself. */
const KEYED = new Set(['GetItem', 'BatchGetItem', 'PutItem', 'UpdateItem', 'DeleteItem', 'BatchWriteItem', 'CreateTable', 'DescribeTable', 'UpdateTimeToLive', 'DescribeTimeToLive']);

export interface UnboundedRead {
  operation: string;
  index?: string;
  why: string;
}

/** Splits a key condition at its top-level ANDs, leaving `BETWEEN :a AND :b` whole. */
function clauses(expression: string): string[] {
  const parts = expression.split(/\s+AND\s+/i);
  const out: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] as string;
    if (/\bBETWEEN\s+\S+$/i.test(part) && i + 1 < parts.length) {
      out.push(`${part} AND ${parts[i + 1] as string}`);
      i++;
    } else out.push(part);
  }
  return out.map((c) => c.trim().replace(/^\(+|\)+$/g, '').trim());
}

/** Whether a Query fixes `hash` by equality, in its expression or in the older `KeyConditions` form. */
function fixesPartition(request: Record<string, unknown>, hash: string): boolean {
  const names = (request.ExpressionAttributeNames ?? {}) as Record<string, string>;
  const expression = request.KeyConditionExpression;
  if (typeof expression === 'string') {
    return clauses(expression).some((clause) => {
      const m = /^(#?[\w.-]+)\s*=\s*:[\w-]+$/.exec(clause);
      if (!m) return false;
      const name = m[1] as string;
      return (name.startsWith('#') ? names[name] : name) === hash;
    });
  }
  const legacy = request.KeyConditions as Record<string, { ComparisonOperator?: string }> | undefined;
  return legacy?.[hash]?.ComparisonOperator === 'EQ';
}

/** Every request in `exchanges` whose cost is not bounded by a partition. */
export function unboundedReads(exchanges: readonly DynamoExchange[]): UnboundedRead[] {
  const found: UnboundedRead[] = [];
  for (const { operation, request } of exchanges) {
    const index = typeof request.IndexName === 'string' ? request.IndexName : undefined;
    if (operation === 'Scan') {
      found.push({ operation, ...(index ? { index } : {}), why: `a Scan reads every item of ${index ?? 'the table'}` });
      continue;
    }
    if (operation === 'Query') {
      const hash = PARTITION_KEY[index ?? ''];
      if (hash === undefined) found.push({ operation, ...(index ? { index } : {}), why: `a Query on ${index}, which the table does not declare` });
      else if (!fixesPartition(request, hash)) found.push({ operation, ...(index ? { index } : {}), why: `a Query on ${index ?? 'the table'} without ${hash} = :value in its key condition` });
      continue;
    }
    if (!KEYED.has(operation)) found.push({ operation, why: `${operation || 'an unnamed operation'} is not addressed by key` });
  }
  return found;
}

/** `exchanges` by operation (and index), e.g. `{ 'Query status-index': 16, GetItem: 2 }`. */
export function countByOperation(exchanges: readonly DynamoExchange[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const { operation, request } of exchanges) {
    const name = typeof request.IndexName === 'string' ? `${operation} ${request.IndexName}` : operation;
    counts[name] = (counts[name] ?? 0) + 1;
  }
  return counts;
}
