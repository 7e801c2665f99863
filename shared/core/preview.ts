import { previewOperatorAction as decidePreview } from './decide.js';
import { DEFAULT_SETTINGS, type EngineSettings } from './lifecycle.js';
import { operatorContext } from './operator.js';
import type { PaymentRecord } from './types.js';

/**
 * What an operator's action would do to a payment, shown before it is done (the console's confirm
 * step, the bulk preview): the payment's transition function decides (shared/core/decide.ts), as it
 * does when the action is taken. The operator functions decide again when they write, so a preview
 * that is out of date can only make an action refused, never make a refused one happen.
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

export function previewOperatorAction(record: PaymentRecord, action: OperatorAction, now: number, settings: EngineSettings = DEFAULT_SETTINGS): ActionPreview {
  let n = 0;
  // A preview mints no real fence: nothing it decides is written.
  const ctx = operatorContext({ store: undefined as never, queue: undefined as never, clock: () => now, fence: () => ({ id: 'preview', n: n++ }), settings }, record, now);
  return decidePreview(record, action, ctx);
}
