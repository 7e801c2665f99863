import { retryMessage, type RetryQueue } from '../queue/port.js';
import type { RecordStore } from '../store/port.js';
import { ambiguityOf } from '../systems/holdings.js';
import { decide, decideContext, type DecideContext, type PaymentEvent } from './decide.js';
import { DEFAULT_SETTINGS, type EngineSettings } from './lifecycle.js';
import { sqsDelaySeconds } from './retry-policy.js';
import type { Fence, PaymentRecord } from './types.js';

/**
 * What an operator's action needs: the records, the queues and fences of its own; no downstream
 * credentials. Actions never post from the operator's machine: they make the record due and queue it,
 * so the stage's own worker sends it with the stage's own secrets. What each action does is decided by
 * the payment's transition function (shared/core/decide.ts), which first looks at what the downstream
 * may already hold: a payment that may have arrived is reconciled before anything is sent.
 */
export interface OperatorDeps {
  store: RecordStore;
  queue: RetryQueue;
  clock: () => number;
  fence: () => Fence;
  /** The stage's engine settings (the reconcile delay); the defaults when the operator's machine has none. */
  settings?: EngineSettings;
}

export type OperatorResult = { ok: true; record: PaymentRecord; said: string } | { ok: false; reason: string };

/** The transition function's context for an operator's action on `record`. */
export function operatorContext(deps: OperatorDeps, record: PaymentRecord, now: number): DecideContext {
  return decideContext(record.system, { now, policy: ambiguityOf(record.system), settings: deps.settings ?? DEFAULT_SETTINGS, random: Math.random, fence: deps.fence });
}

async function act(deps: OperatorDeps, pk: string, event: PaymentEvent, reason: string): Promise<OperatorResult> {
  for (let i = 0; i < 3; i++) {
    const current = await deps.store.get(pk);
    if (!current) return { ok: false, reason: 'no such payment' };
    const now = deps.clock();
    const d = decide(current, event, operatorContext(deps, current, now));
    if (d.kind === 'refuse') return { ok: false, reason: d.said };
    if (d.kind !== 'write') return { ok: false, reason: d.said };
    if (await deps.store.replace(d.record, current.version)) {
      const record = { ...d.record, version: current.version + 1 };
      if (d.wakeAt !== undefined) await deps.queue.send(retryMessage(record, reason), sqsDelaySeconds(d.wakeAt, now));
      return { ok: true, record, said: d.said };
    }
  }
  return { ok: false, reason: 'it kept changing under us; try again' };
}

/** `paybridge redrive`: a held payment (credentials fixed, or the downstream back) is due now with a fresh budget, reconciled first where it may have arrived. */
export function redrive(deps: OperatorDeps, pk: string, by: string): Promise<OperatorResult> {
  return act(deps, pk, { type: 'redrive', by }, 'redrive');
}

/** `paybridge payments resolve --posted`: an operator found an unknown payment downstream. Nothing is sent. */
export function resolvePosted(deps: OperatorDeps, pk: string, by: string, evidence: string): Promise<OperatorResult> {
  return act(deps, pk, { type: 'resolve', as: 'posted', by, evidence }, 'resolve');
}

/**
 * `paybridge payments resolve --not-posted`: an operator established that an unknown payment did not
 * arrive. It becomes `failed` (nothing is sent), so it can be reposted, or sent again with corrected
 * data under the same key.
 */
export function resolveNotPosted(deps: OperatorDeps, pk: string, by: string, evidence: string): Promise<OperatorResult> {
  return act(deps, pk, { type: 'resolve', as: 'not-posted', by, evidence }, 'resolve');
}

/**
 * `paybridge repost`: a failed, held or unknown payment sent again with the same request, as a new
 * revision that keeps what the downstream holds (it resumes, never starts over); one that may have
 * arrived is reconciled first instead.
 */
export function repost(deps: OperatorDeps, pk: string, by: string, evidence: string): Promise<OperatorResult> {
  return act(deps, pk, { type: 'repost', by, evidence }, 'repost');
}

/** The earlier name of `repost` for an unknown payment. */
export const resolveRepost = repost;
