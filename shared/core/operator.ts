import type { RetryQueue } from '../queue/port.js';
import type { RecordStore } from '../store/port.js';
import { scheduled, settledBase, withHistory } from './lifecycle.js';
import type { PaymentRecord, Status } from './types.js';

/** What an operator's action needs: the records and the queue, no downstream credentials. */
export interface OperatorDeps {
  store: RecordStore;
  queue: RetryQueue;
  clock: () => number;
}

export type OperatorResult = { ok: true; record: PaymentRecord } | { ok: false; reason: string };

async function change(deps: OperatorDeps, pk: string, allowed: Status[], make: (r: PaymentRecord, now: number) => PaymentRecord): Promise<OperatorResult> {
  for (let i = 0; i < 3; i++) {
    const current = await deps.store.get(pk);
    if (!current) return { ok: false, reason: 'no such record' };
    if (!allowed.includes(current.status)) return { ok: false, reason: `it is ${current.status}, not ${allowed.join(' or ')}` };
    const now = deps.clock();
    if (current.leaseUntil !== undefined && current.leaseUntil > now) return { ok: false, reason: 'an attempt is in flight right now' };
    const next = make(current, now);
    if (await deps.store.replace(next, current.version)) return { ok: true, record: { ...next, version: current.version + 1 } };
  }
  return { ok: false, reason: 'it kept changing under us; try again' };
}

/** Due now, with a fresh failure budget, and a queue message to wake the worker that has the credentials. */
function dueNow(record: PaymentRecord, now: number, event: string, detail: string): PaymentRecord {
  const { error: _e, ...rest } = scheduled(record, now, now);
  return { ...rest, status: 'retrying', failures: 0, history: withHistory(record, now, event, detail) };
}

/** `paybridge redrive`: a held payment (credentials fixed) is sent again by the retry worker. */
export async function redrive(deps: OperatorDeps, pk: string, by: string): Promise<OperatorResult> {
  const done = await change(deps, pk, ['held'], (r, now) => dueNow(r, now, 'redriven', `by ${by}, after the configuration was fixed`));
  if (done.ok) await deps.queue.send({ pk, reason: 'redrive' }, 0);
  return done;
}

/** `paybridge payments resolve --posted`: an operator found the payment downstream. Nothing is sent. */
export async function resolvePosted(deps: OperatorDeps, pk: string, by: string, evidence: string): Promise<OperatorResult> {
  return change(deps, pk, ['unknown'], (r, now) => {
    const { error: _e, ...rest } = settledBase(r, now);
    return {
      ...rest,
      status: 'posted',
      result: { httpStatus: 0, body: { resolvedBy: by, evidence }, note: `resolved as posted by ${by}: ${evidence}` },
      history: withHistory(r, now, 'resolved_posted', `by ${by}: ${evidence}`),
    };
  });
}

/** `paybridge payments resolve --repost`: an operator established it did not arrive; send it again. */
export async function resolveRepost(deps: OperatorDeps, pk: string, by: string, evidence: string): Promise<OperatorResult> {
  const done = await change(deps, pk, ['unknown'], (r, now) => {
    const next = dueNow(r, now, 'resolved_repost', `by ${by}: ${evidence}`);
    // A deliberate re-post must not be mistaken for an earlier attempt's leftovers (BRP, Kontantanalys).
    return { ...next, checkpoints: { ...next.checkpoints, orderRequested: false, receiptRequested: false, createRequested: false } };
  });
  if (done.ok) await deps.queue.send({ pk, reason: 'resolve-repost' }, 0);
  return done;
}
