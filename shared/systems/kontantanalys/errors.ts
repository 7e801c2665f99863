import { classify, type Observation } from '../../core/classify.js';
import type { Outcome } from '../../core/types.js';

/** `{"errors": [...]}`: strings in the document's C# example, objects elsewhere; each is kept. */
export function envelopeErrors(body: unknown): string[] {
  const list = (body as { errors?: unknown[] } | undefined)?.errors;
  if (!Array.isArray(list)) return [];
  return list.map((e) => {
    if (typeof e === 'string') return e;
    if (e && typeof e === 'object') {
      const o = e as Record<string, unknown>;
      const parts = [o.code, o.title, o.detail ?? o.message, (o.source as Record<string, unknown> | undefined)?.pointer].filter((v) => typeof v === 'string' || typeof v === 'number');
      return parts.length ? parts.join(': ') : JSON.stringify(e);
    }
    return String(e);
  });
}

export function classifyKontantanalys(obs: Observation, now: number): Outcome {
  const out = classify(obs, now);
  if (obs.kind !== 'response' || out.type === 'posted') return out;
  const errors = envelopeErrors(obs.body);
  if (errors.length === 0) return out;
  return { ...out, message: errors.join('; ') } as Outcome;
}
