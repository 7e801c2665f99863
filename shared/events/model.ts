import { createHash } from 'node:crypto';
import type { PaymentRecord, Status } from '../core/types.js';
import { shardOf } from '../store/indexes.js';

/**
 * Settlement events out (issue 21): what a caller is told when one of its payments reaches a reported
 * status or an operator decides about it. The event is part of the record write that causes it (a
 * transactional outbox): `stampEvent` runs inside the store's claim and replace (shared/store/dynamo.ts),
 * so a status change and its event are one conditional write, and nothing can be lost between them.
 */

export const EVENT_TYPES = ['payment.posted', 'payment.failed', 'payment.held', 'payment.unknown', 'payment.resolved', 'payment.reposted', 'payment.redriven'] as const;
export type PaymentEventType = (typeof EVENT_TYPES)[number];
/** Sent by paybridge about an endpoint itself, never stamped on a record. */
export const ENDPOINT_EVENT_TYPES = ['endpoint.test', 'endpoint.disabled'] as const;
export type EventType = PaymentEventType | (typeof ENDPOINT_EVENT_TYPES)[number];

const STATUS_EVENTS: Partial<Record<Status, PaymentEventType>> = {
  posted: 'payment.posted',
  failed: 'payment.failed',
  held: 'payment.held',
  unknown: 'payment.unknown',
};

/** The operator's decisions, as the newest history entry of the write that made them (shared/core/operator.ts). */
const DECISIONS: Record<string, PaymentEventType> = {
  resolved_posted: 'payment.resolved',
  resolved_not_posted: 'payment.resolved',
  reposted: 'payment.reposted',
  redriven: 'payment.redriven',
};

/** What a record carries forward of the last event it reported: the next write compares with it. */
export interface LastEvent {
  id: string;
  seq: number;
  type: PaymentEventType;
  revision: number;
  status: Status;
  /** `<history event>@<at>` of the decision reported, so one decision is reported once. */
  decision?: string;
  /** Epoch ms of the write that stamped it. */
  at: number;
  /** The event before it on this record: a delivery of this one waits while that one is pending to the same endpoint. */
  previousId?: string;
}

/** The outbox part of a record (kept beside PaymentRecord's own fields, which the engine spreads forward). */
export interface Outbox {
  lastEvent?: LastEvent;
  /**
   * Set while the last event is not yet handed to the endpoints (local relay) and cleared by it in one
   * conditional write: the partition of the sparse `events-index`, `pending#<shard>`.
   */
  eventsKey?: string;
  /** The range key of `events-index`: when the pending event was stamped. */
  eventAt?: number;
  /**
   * Present only on the write that stamped a new event (removed by every other write): what the
   * DynamoDB stream's pipe filters on in AWS, so each event leaves the table once.
   */
  eventNew?: string;
  /**
   * The events stamped since the relay last cleared the mark, oldest first (the last is `lastEvent`): two
   * status changes before a relay pass (held, then an operator's redrive) are both handed on. In AWS the
   * stream sees each write by itself.
   */
  pendingEvents?: LastEvent[];
  /**
   * The name the payment's events give it (`eventSubjectOf`), written with each new event: what the pipe
   * puts on the bus as `key` in AWS (shared/aws/stack.ts), where the record's own key may hold personal data.
   */
  eventSubject?: string;
}

/** Events kept pending on one record at most: far more status changes than a relay pass ever falls behind by. */
export const PENDING_LIMIT = 20;

export type OutboxRecord = PaymentRecord & Outbox;

/** The pending partitions of events-index: few, as the relay reads each of them on every pass. */
export const PENDING_SHARDS = 4;
export const pendingKey = (shard: number) => `pending#${shard}`;

/**
 * The event id: derived from the record's key, revision and sequence number only, so a write the engine
 * retries (after a lost reply or a version conflict) stamps the same id, and a relay that publishes
 * twice publishes the same id. Hashed: a key is an id of the caller's, but the id needs none of it.
 */
export function eventId(pk: string, revision: number, seq: number): string {
  return `evt_${createHash('sha256').update(`${pk}\u0000${revision}\u0000${seq}`).digest('base64url').slice(0, 26)}`;
}

/** Which event, if any, this write reports that the record has not reported yet. */
export function dueEvent(next: OutboxRecord): { type: PaymentEventType; decision?: string } | undefined {
  // The scheduled Kontantanalys run's summary is kept as a record but is no payment of any caller's.
  if (next.system === 'kontantanalys' && next.key.startsWith(RUN_KEY_PREFIX)) return undefined;
  const last = next.lastEvent;
  const newest = next.history[next.history.length - 1];
  const decisionType = newest ? DECISIONS[newest.event] : undefined;
  if (newest && decisionType) {
    const decision = `${newest.event}@${newest.at}`;
    if (last?.decision !== decision) return { type: decisionType, decision };
  }
  const statusType = STATUS_EVENTS[next.status];
  if (!statusType) return undefined;
  const revision = next.revision ?? 1;
  if (last && last.revision === revision && last.status === next.status) return undefined;
  return { type: statusType };
}

/**
 * Pure: the record as it should be written. When it has reached a reported status (or carries an
 * operator decision) that its own `lastEvent` has not reported, the new event is set on it with the
 * next sequence number and a deterministic id, and marked pending; otherwise it is returned with only
 * the one-write `eventNew` marker removed.
 */
export function stampEvent<R extends PaymentRecord>(next: R, now: number): R & Outbox {
  const { eventNew: _n, ...rest } = next as R & Outbox;
  const record = rest as R & Outbox;
  const due = dueEvent(record);
  if (!due) return record;
  const seq = (record.lastEvent?.seq ?? 0) + 1;
  const revision = record.revision ?? 1;
  const id = eventId(record.pk, revision, seq);
  const lastEvent: LastEvent = {
    id,
    seq,
    type: due.type,
    revision,
    status: record.status,
    ...(due.decision ? { decision: due.decision } : {}),
    at: now,
    ...(record.lastEvent ? { previousId: record.lastEvent.id } : {}),
  };
  return {
    ...record,
    lastEvent,
    pendingEvents: [...(record.eventsKey ? (record.pendingEvents ?? []) : []), lastEvent].slice(-PENDING_LIMIT),
    eventsKey: pendingKey(shardOf(record.pk, PENDING_SHARDS)),
    eventAt: now,
    eventNew: id,
    eventSubject: eventSubjectOf(record),
  };
}

/**
 * What the store calls inside claim and replace: `stampEvent`, and the outbox fields it set also put on
 * the caller's own record object. The engine goes on from the record it handed to the store (its next
 * write, the snapshot in a retry message) without reading it back: without this, that next write would
 * carry the previous `lastEvent` and stamp the next status change with a sequence number (and so an id)
 * already used (found by test/integration/events-out.test.ts: held, redriven, then posted lost `posted`).
 */
export function stampForWrite<R extends PaymentRecord>(record: R, now: number): R & Outbox {
  const stamped = stampEvent(record, now);
  const target = record as R & Outbox;
  if (stamped.lastEvent !== target.lastEvent) {
    target.lastEvent = stamped.lastEvent;
    target.pendingEvents = stamped.pendingEvents;
    target.eventsKey = stamped.eventsKey;
    target.eventAt = stamped.eventAt;
    target.eventSubject = stamped.eventSubject;
  }
  return stamped;
}

/** The longest downstream id an event carries (NIF, BRP and Kontantanalys ids are far shorter). */
const REFERENCE_MAX_CHARS = 100;

/** The downstream's own reference for a record, where it gave one: ids only, never personal data. */
export function referenceOf(record: PaymentRecord): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  const pick = (from: unknown, name: string, as: string) => {
    const v = from && typeof from === 'object' ? (from as Record<string, unknown>)[name] : undefined;
    // Ids only: whatever else a downstream put there stays out, and the event far under 20 KB (MAX_EVENT_BYTES).
    if ((typeof v === 'string' && v.length <= REFERENCE_MAX_CHARS) || (typeof v === 'number' && Number.isFinite(v))) out[as] = v;
  };
  const body = record.result?.body;
  // NIF answers the payment row it added (both generations).
  if (record.system.startsWith('nif')) pick(body, 'paymentId', 'nifPaymentId');
  pick(record.checkpoints, 'orderId', 'brpOrderId');
  pick(record.checkpoints, 'receiptId', 'brpReceiptId');
  pick(record.checkpoints, 'remoteId', 'kontantanalysId');
  return out;
}

/** The event as it travels (Standard Webhooks' recommended `{type, timestamp, data}` plus its id). No personal data. */
export interface PaymentEvent {
  id: string;
  type: EventType;
  timestamp: string;
  data: {
    system?: string;
    key?: string;
    revision?: number;
    status?: Status;
    sequence?: number;
    statusUrl?: string;
    reference?: Record<string, string | number>;
    decision?: string;
    [k: string]: unknown;
  };
}

/**
 * The scheduled Kontantanalys run's summary key prefix (shared/systems/kontantanalys/describe.ts); not
 * imported, as every bundle holds the store and must hold no system's code but its own (issue 14).
 */
const RUN_KEY_PREFIX = 'run:';

/** A Kontantanalys object's own route, as kontantanalysPath (shared/systems/kontantanalys/describe.ts) spells it. */
function kontantanalysPath(key: string): string | undefined {
  const at = key.indexOf(':');
  if (at <= 0 || key.startsWith(RUN_KEY_PREFIX)) return undefined;
  return `/v1/kontantanalys/${key.slice(0, at)}/${encodeURIComponent(key.slice(at + 1).toWellFormed())}`;
}

/** The status route, as shared/http/payments.ts spells it (not imported: the store would pull in the engine). */
function statusPath(system: string, key: string): string {
  return `/v1/payments/${encodeURIComponent(system.toWellFormed())}/${encodeURIComponent(key.toWellFormed())}`;
}

/** The caller an event belongs to; records from before callers were recorded belong to none. */
export const NO_CALLER = '-';

/**
 * For a first-generation NIF payment keyed by its natural key (`<ClubId>:natural:<personId>:...`, given
 * neither an externalId nor an Idempotency-Key): the ExternalId sent to NIF for it (shared/systems/nif,
 * `derivedExternalId`, kept in the record's request). Undefined for every other key.
 */
function naturalKeyExternalId(record: PaymentRecord): { externalId?: string } | undefined {
  if (!record.system.startsWith('nif') || !/^[^:]*:natural:/.test(record.key)) return undefined;
  const payment = (record.request as { payment?: { externalId?: unknown } } | undefined)?.payment;
  return typeof payment?.externalId === 'string' ? { externalId: payment.externalId } : {};
}

/** What the bus says for a natural-key NIF payment whose request holds no ExternalId (none made since the first NIF routes). */
const NO_SUBJECT = '-';

/**
 * The payment's name in its events: its key, or for a NIF natural key (which holds the personId) the
 * ExternalId paybridge derived and sent NIF, as `eventOf` names it. Never the key of such a payment.
 */
export function eventSubjectOf(record: PaymentRecord): string {
  const natural = naturalKeyExternalId(record);
  return natural === undefined ? record.key : (natural.externalId ?? NO_SUBJECT);
}

/** The event the record's `lastEvent` stands for, built from the record alone. */
export function eventOf(record: OutboxRecord, last: LastEvent | undefined = record.lastEvent): PaymentEvent | undefined {
  if (!last) return undefined;
  const decision = last.decision?.slice(0, last.decision.indexOf('@'));
  const natural = naturalKeyExternalId(record);
  return {
    id: last.id,
    type: last.type,
    timestamp: new Date(last.at).toISOString(),
    data: {
      system: record.system,
      // A NIF natural key holds the personId (docs/routes.md), and so does its status URL: the event names
      // the payment by the ExternalId paybridge derived from that key and sent NIF instead.
      ...(natural ?? { key: record.key }),
      revision: last.revision,
      status: last.status,
      sequence: last.seq,
      ...(natural !== undefined ? {} : { statusUrl: (record.system === 'kontantanalys' ? kontantanalysPath(record.key) : undefined) ?? statusPath(record.system, record.key) }),
      reference: referenceOf(record),
      ...(decision ? { decision } : {}),
    },
  };
}
