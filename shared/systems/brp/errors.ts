import { classify, type Observation } from '../../core/classify.js';
import type { Outcome } from '../../core/types.js';

interface BrpError {
  code?: unknown;
  message?: unknown;
  debuginfo?: unknown;
}

/** BRP API2 errors come as `{errors: [{code, message, debuginfo}]}` (issue 4); keep every one. */
export function brpErrors(body: unknown): { code: string; message: string }[] {
  const list = (body as { errors?: BrpError[] } | undefined)?.errors;
  if (!Array.isArray(list)) return [];
  return list.map((e) => ({
    code: e.code === undefined ? 'unknown' : String(e.code),
    message: [e.message, e.debuginfo].filter((v) => typeof v === 'string' && v).join(' — ') || 'no message',
  }));
}

export function classifyBrp(obs: Observation, now: number): Outcome {
  const generic = classify(obs, now);
  if (obs.kind !== 'response' || generic.type !== 'rejected') {
    if (obs.kind === 'response' && (generic.type === 'auth' || generic.type === 'rate_limited')) {
      const errs = brpErrors(obs.body);
      if (errs.length > 0) return { ...generic, message: errs.map((e) => `${e.code}: ${e.message}`).join('; ') };
    }
    return generic;
  }
  const errs = brpErrors(obs.body);
  if (errs.length === 0) return generic;
  return { ...generic, code: errs.map((e) => e.code).join(','), message: errs.map((e) => `${e.code}: ${e.message}`).join('; ') };
}
