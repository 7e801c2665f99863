import type { PaymentRecord, Status } from '../core/types.js';

/** FNV-1a: a fast, stable spread of keys over shards (not a security hash). */
export function shardOf(key: string, shards: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % Math.max(1, shards);
}

export type DueKind = 'due' | 'held' | 'unknown';

export function dueKindOf(status: Status): DueKind | undefined {
  if (status === 'retrying' || status === 'reconciling') return 'due';
  if (status === 'held' || status === 'unknown') return status;
  return undefined;
}

export const dueShardName = (system: string, kind: DueKind, shard: number): string => `${system}#${kind}#${shard}`;
export const statusShardName = (system: string, status: string, shard: number): string => `${system}#${status}#${shard}`;

/**
 * The listing index's partition (`list-index`, by `createdMs`): every payment is in one of two, so a page
 * of any filter reads at most two partitions (issue 22: the status index needed statuses × systems ×
 * shards queries). Posted payments are the bulk; the other statuses (what an operator looks for) are
 * few, so a filter on them reads a small partition. Writes to one partition stay far below a partition's
 * 1,000 writes a second: a payment writes its index entry once per status change, and every system is
 * paced to a few sends a second.
 */
export const LIST_PARTS = { posted: 'pay#posted', open: 'pay#open', audit: 'audit' } as const;
export const listPartOf = (status: Status): string => (status === 'posted' ? LIST_PARTS.posted : LIST_PARTS.open);

/**
 * The record with its index attributes derived from its status: every write goes through here, so the
 * indexes can never disagree with the record. A record the sweep must see always has `nextAttemptAt`.
 */
export function withIndexes(record: PaymentRecord, shards: number, now: number): PaymentRecord {
  const shard = shardOf(record.pk, shards);
  const kind = dueKindOf(record.status);
  const { dueShard: _d, ...rest } = record;
  const createdMs = record.createdMs ?? Date.parse(record.createdAt);
  return {
    ...rest,
    statusShard: statusShardName(record.system, record.status, shard),
    listPart: listPartOf(record.status),
    createdMs: Number.isFinite(createdMs) ? createdMs : now,
    ...(kind ? { dueShard: dueShardName(record.system, kind, shard), nextAttemptAt: record.nextAttemptAt ?? now } : {}),
  };
}
