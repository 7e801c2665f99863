import type { AmbiguityPolicy, PaymentRecord, Status } from './types.js';

/**
 * What an operator's action would do to a payment, shown before it is done (the console's confirm
 * step, the bulk preview). The engine's single transition function decides this once it exists; until
 * then this reads the record the way shared/core/operator.ts acts on it: the statuses each action
 * accepts, an attempt in flight, and what the downstream may already hold (checkpoints, the last error,
 * the system's ambiguity policy). The operator functions check again when they write, so a preview that
 * is out of date can only make an action refused, never make a refused one happen.
 */
export type OperatorAction = 'redrive' | 'repost' | 'resolve-posted' | 'resolve-not-posted';

export interface ActionPreview {
  allowed: boolean;
  /** What the downstream may already hold for this payment, in words. */
  mayHold: string;
  /** What the action will do, in words. */
  will: string;
  /** Why it is not allowed (when `allowed` is false). */
  reason?: string;
}

/** The systems' ambiguity policies (shared/systems/<system>/describe.ts), without loading any module. */
const AMBIGUITY: Record<string, AmbiguityPolicy> = {
  cambio: 'resend',
  'nif-membership': 'reconcile',
  'nif-corporate': 'reconcile',
  nif: 'park',
  brp: 'reconcile',
  kontantanalys: 'reconcile',
};

/** The statuses each action accepts (shared/core/operator.ts). */
const ACCEPTS: Record<OperatorAction, Status[]> = {
  redrive: ['held'],
  repost: ['failed', 'held', 'unknown'],
  'resolve-posted': ['unknown'],
  'resolve-not-posted': ['unknown'],
};

function held(record: PaymentRecord): string {
  const steps = Object.entries(record.checkpoints ?? {}).filter(([, v]) => v !== undefined && v !== null && v !== false);
  const kind = record.error?.kind;
  if (record.status === 'posted') return 'the payment: it was posted';
  if (record.attempts === 0) return 'nothing: no request was ever sent';
  if (steps.length > 0) return `part of it: steps ${steps.map(([k]) => k).join(', ')} were confirmed by the downstream`;
  if (record.status === 'unknown' || kind === 'ambiguous') {
    const policy = AMBIGUITY[record.system] ?? 'park';
    const how = policy === 'resend' ? 'sending it again only sets the same state' : policy === 'reconcile' ? 'a reconcile read can tell' : 'nothing can ask it: check by hand';
    return `maybe the payment: an answer was ambiguous (${how})`;
  }
  if (kind === 'rejected' || kind === 'resolved') return 'nothing: the downstream refused it, or an operator found it absent';
  if (kind === 'auth' || kind === 'config') return 'nothing: the downstream refused the credentials before taking it';
  return `probably nothing: ${record.attempts} attempt(s) ended without a success (${kind ?? 'no error recorded'})`;
}

export function previewOperatorAction(record: PaymentRecord, action: OperatorAction, now: number): ActionPreview {
  const mayHold = held(record);
  const accepts = ACCEPTS[action];
  const refuse = (reason: string, will: string): ActionPreview => ({ allowed: false, mayHold, will, reason });
  if (!accepts.includes(record.status)) return refuse(`it is ${record.status}; ${action} is only for ${accepts.join(' or ')} payments`, 'nothing');
  if (record.leaseUntil !== undefined && record.leaseUntil > now) return refuse('an attempt is in flight right now; look again in a moment', 'nothing');
  const revision = (record.revision ?? 1) + 1;
  switch (action) {
    case 'redrive':
      return { allowed: true, mayHold, will: 'make it due now with a fresh retry budget: the worker sends it again under the same revision, paced by the system\'s rate' };
    case 'repost': {
      const risky = record.status === 'unknown' || Object.keys(record.checkpoints ?? {}).length > 0;
      return {
        allowed: true,
        mayHold,
        will: `send the same request again as revision ${revision}${risky ? ': only if you are sure the downstream does not hold it, or it may be doubled' : ''}`,
      };
    }
    case 'resolve-posted':
      return { allowed: true, mayHold, will: 'record it as posted with your evidence; nothing is sent' };
    case 'resolve-not-posted':
      return { allowed: true, mayHold, will: 'record it as failed (not posted) with your evidence; nothing is sent; it can be reposted afterwards' };
  }
}
