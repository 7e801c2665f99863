import type { HistoryEntry, PaymentRecord, RevisionSummary } from '../core/types.js';
import type { AuditEntry } from '../store/browse.js';

/**
 * A payment's timeline for the console: the record's history entries (deliveries, claims, attempts,
 * ambiguous answers, reconcile reads, revisions, operator actions), its earlier revisions, the audit
 * log's entries for it (who, why, the result), and its settlement events when the record carries them.
 * Texts arrive already scrubbed of personal data (shared/cli/personal.ts); this only orders and labels.
 */
export type TimelineKind = 'delivery' | 'claim' | 'attempt' | 'ambiguous' | 'reconcile' | 'revision' | 'operator' | 'event' | 'engine';

export interface TimelineEntry {
  at: string;
  kind: TimelineKind;
  event: string;
  detail?: string;
  /** The HTTP status an attempt's entry names. */
  httpStatus?: number;
  who?: string;
}

const KINDS: Record<string, TimelineKind> = {
  received: 'delivery',
  changed: 'revision',
  reopened: 'revision',
  reposted: 'revision',
  queued: 'claim',
  deferred: 'claim',
  requeued: 'claim',
  stranded: 'claim',
  posted: 'attempt',
  rejected: 'attempt',
  retryable: 'attempt',
  rate_limited: 'attempt',
  held: 'attempt',
  ambiguous: 'ambiguous',
  unknown: 'ambiguous',
  reconciled: 'reconcile',
  reconcile_inconclusive: 'reconcile',
  redriven: 'operator',
  resolved_posted: 'operator',
  resolved_not_posted: 'operator',
};

function fromHistory(h: HistoryEntry): TimelineEntry {
  let kind = KINDS[h.event] ?? 'engine';
  // Found by a reconcile read, not by a send (shared/core/recovery.ts).
  if (h.event === 'posted' && h.detail?.includes('reconciliation')) kind = 'reconcile';
  const http = h.detail ? /HTTP (\d{3})/.exec(h.detail) : null;
  const by = kind === 'operator' && h.detail ? /^by ([^,:]+)/.exec(h.detail) : null;
  return { at: h.at, kind, event: h.event, ...(h.detail !== undefined ? { detail: h.detail } : {}), ...(http ? { httpStatus: Number(http[1]) } : {}), ...(by?.[1] ? { who: by[1] } : {}) };
}

/** A settlement event as another part of paybridge may keep it on the record (`lastEvent`, `events`). */
interface EventLike {
  id?: string;
  type?: string;
  seq?: number;
  at?: string;
  deliveries?: unknown[];
}

export function timelineOf(
  record: Pick<PaymentRecord, 'history'> & { revisions?: RevisionSummary[]; lastEvent?: unknown; events?: unknown },
  audit: AuditEntry[],
): TimelineEntry[] {
  const entries: TimelineEntry[] = record.history.map(fromHistory);
  for (const r of record.revisions ?? []) {
    entries.push({ at: r.endedAt, kind: 'revision', event: `revision ${r.revision} ended ${r.status}`, detail: `${r.reason}; ${r.attempts} attempt(s)${r.error ? `; ${r.error.kind}: ${r.error.message}` : ''}` });
  }
  for (const a of audit) {
    entries.push({ at: a.at, kind: 'operator', event: `audit: ${a.action}`, who: a.who, detail: `why: ${a.reason}${a.evidence ? `; evidence: ${a.evidence}` : ''}; ${a.ok ? 'done' : 'refused'}: ${a.result}` });
  }
  const events = [...(Array.isArray(record.events) ? (record.events as EventLike[]) : []), ...(record.lastEvent && typeof record.lastEvent === 'object' ? [record.lastEvent as EventLike] : [])];
  const seen = new Set<string>();
  for (const e of events) {
    const id = e.id ?? `${e.type}#${e.seq}`;
    if (seen.has(id)) continue;
    seen.add(id);
    entries.push({ at: e.at ?? '', kind: 'event', event: `${e.type ?? 'event'}${e.seq !== undefined ? ` #${e.seq}` : ''}`, detail: `${Array.isArray(e.deliveries) ? e.deliveries.length : 0} deliveries` });
  }
  return entries.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
}
