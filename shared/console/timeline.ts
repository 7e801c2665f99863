import type { HistoryEntry, PaymentRecord, RevisionSummary } from '../core/types.js';
import type { AuditEntry } from '../store/browse.js';
import type { PaymentEventSummary } from '../events/store.js';

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
  /** A settlement event's entry: the event and its deliveries, ids and outcomes only (never a secret or an answer's bytes). */
  settlement?: PaymentEventSummary;
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

/** The record's own `lastEvent` (shared/events/model.ts): all the timeline has of events where they cannot be read. */
interface LastEventLike {
  id?: string;
  type?: string;
  seq?: number;
  at?: number | string;
}

/** One line of a delivery, as the timeline's detail text says it. */
function deliveryText(d: PaymentEventSummary['deliveries'][number]): string {
  const last = d.lastAttempt ? `, last HTTP ${d.lastAttempt.httpStatus === 0 ? 'none' : d.lastAttempt.httpStatus} in ${d.lastAttempt.ms} ms` : '';
  return `${d.endpointId} ${d.status} after ${d.tries} tr${d.tries === 1 ? 'y' : 'ies'}${last}`;
}

export function timelineOf(
  record: Pick<PaymentRecord, 'history'> & { revisions?: RevisionSummary[]; lastEvent?: unknown },
  audit: AuditEntry[],
  /** The payment's settlement events with their deliveries (EventStore.paymentEvents), where they could be read. */
  settlement?: PaymentEventSummary[],
): TimelineEntry[] {
  const entries: TimelineEntry[] = record.history.map(fromHistory);
  for (const r of record.revisions ?? []) {
    entries.push({ at: r.endedAt, kind: 'revision', event: `revision ${r.revision} ended ${r.status}`, detail: `${r.reason}; ${r.attempts} attempt(s)${r.error ? `; ${r.error.kind}: ${r.error.message}` : ''}` });
  }
  for (const a of audit) {
    entries.push({ at: a.at, kind: 'operator', event: `audit: ${a.action}`, who: a.who, detail: `why: ${a.reason}${a.evidence ? `; evidence: ${a.evidence}` : ''}; ${a.ok ? 'done' : 'refused'}: ${a.result}` });
  }
  const events = [...(settlement ?? [])];
  const last = record.lastEvent && typeof record.lastEvent === 'object' ? (record.lastEvent as LastEventLike) : undefined;
  // The newest event is on the record before the relay has kept it (pending): shown without deliveries yet.
  if (last?.id && last.type && !events.some((e) => e.id === last.id)) {
    const at = typeof last.at === 'number' ? new Date(last.at).toISOString() : (last.at ?? '');
    events.push({ id: last.id, type: last.type as PaymentEventSummary['type'], sequence: last.seq ?? 0, time: at, deliveries: [] });
  }
  for (const e of events) {
    const detail = `${e.id}; ${e.deliveries.length === 0 ? 'no deliveries yet' : e.deliveries.map(deliveryText).join('; ')}`;
    entries.push({ at: e.time, kind: 'event', event: `${e.type} #${e.sequence}`, detail, settlement: e });
  }
  return entries.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
}
