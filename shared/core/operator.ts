import { retryMessage, type RetryQueue } from '../queue/port.js';
import type { RecordStore } from '../store/port.js';
import { newRevision, scheduled, settledBase, withHistory } from './lifecycle.js';
import type { Fence, PaymentRecord, Status } from './types.js';

/**
 * What an operator's action needs: the records, the queues and fences of its own; no downstream
 * credentials. Actions never post from the operator's machine: they make the record due and queue it,
 * so the stage's own worker sends it with the stage's own secrets.
 */
export interface OperatorDeps {
  store: RecordStore;
  queue: RetryQueue;
  clock: () => number;
  fence: () => Fence;
}

export type OperatorResult = { ok: true; record: PaymentRecord } | { ok: false; reason: string };

async function change(deps: OperatorDeps, pk: string, allowed: Status[], make: (r: PaymentRecord, now: number) => PaymentRecord): Promise<OperatorResult> {
  for (let i = 0; i < 3; i++) {
    const current = await deps.store.get(pk);
    if (!current) return { ok: false, reason: 'no such payment' };
    if (!allowed.includes(current.status)) return { ok: false, reason: `it is ${current.status}, not ${allowed.join(' or ')}` };
    const now = deps.clock();
    if (current.leaseUntil !== undefined && current.leaseUntil > now) return { ok: false, reason: 'an attempt is in flight right now' };
    const next = make(current, now);
    if (await deps.store.replace(next, current.version)) return { ok: true, record: { ...next, version: current.version + 1 } };
  }
  return { ok: false, reason: 'it kept changing under us; try again' };
}

async function wake(deps: OperatorDeps, done: OperatorResult, reason: string): Promise<OperatorResult> {
  if (done.ok) await deps.queue.send(retryMessage(done.record, reason), 0);
  return done;
}

/** `paybridge redrive`: a held payment (credentials fixed, or the downstream back) is due now with a fresh budget. */
export async function redrive(deps: OperatorDeps, pk: string, by: string): Promise<OperatorResult> {
  const done = await change(deps, pk, ['held'], (r, now) => {
    const { error: _e, ...rest } = scheduled({ ...r, status: 'retrying' }, now, now, deps.fence());
    return { ...rest, failures: 0, budgetFrom: now, history: withHistory(r, now, 'redriven', `by ${by}, after the cause was fixed`) };
  });
  return wake(deps, done, 'redrive');
}

/** `paybridge payments resolve --posted`: an operator found an unknown payment downstream. Nothing is sent. */
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

/**
 * `paybridge payments resolve --not-posted`: an operator established that an unknown payment did not
 * arrive. It becomes `failed` (nothing is sent), so it can be reposted, or sent again with corrected
 * data under the same key.
 */
export async function resolveNotPosted(deps: OperatorDeps, pk: string, by: string, evidence: string): Promise<OperatorResult> {
  return change(deps, pk, ['unknown'], (r, now) => ({
    ...settledBase(r, now),
    status: 'failed',
    error: { kind: 'resolved', message: `resolved as not posted by ${by}: ${evidence}` },
    history: withHistory(r, now, 'resolved_not_posted', `by ${by}: ${evidence}`),
  }));
}

/**
 * `paybridge repost` (and `resolve --repost`): a payment that provably reached nothing (failed, held,
 * or unknown that the operator vouches for) is sent again as a new revision of its record, with the
 * same request; the earlier revision stays in the record's history.
 */
export async function repost(deps: OperatorDeps, pk: string, by: string, evidence: string): Promise<OperatorResult> {
  const done = await change(deps, pk, ['failed', 'held', 'unknown'], (r, now) => {
    const revised = newRevision(r, r.request, now, `reposted by ${by}: ${evidence}`, 'reposted');
    return scheduled(revised, now, now, deps.fence());
  });
  return wake(deps, done, 'repost');
}

/** The earlier name of `repost` for an unknown payment. */
export const resolveRepost = repost;
