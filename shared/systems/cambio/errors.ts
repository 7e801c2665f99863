import { classify, type Observation } from '../../core/classify.js';
import type { Outcome } from '../../core/types.js';

interface ResultItem {
  ResultCode?: unknown;
  Comment?: unknown;
}

function comments(items: ResultItem[], code: string): string {
  return items
    .filter((i) => i.ResultCode === code)
    .map((i) => (typeof i.Comment === 'string' ? i.Comment : ''))
    .filter(Boolean)
    .join('; ');
}

/**
 * Cambio's answers (seed 000): a 200 carries a list of `{ResultCode: OK|ERROR|INFO, Comment}`.
 * ERROR inside a 200 is a rejection; INFO is success with the comment kept. 401/403/429 carry
 * `{statusCode, message}`, the 429 with "Try again in N seconds".
 */
export function classifyCambio(obs: Observation, now: number): Outcome {
  if (obs.kind === 'response' && obs.status >= 200 && obs.status < 300) {
    const items = (Array.isArray(obs.body) ? obs.body : obs.body && typeof obs.body === 'object' ? [obs.body] : []) as ResultItem[];
    if (items.some((i) => i.ResultCode === 'ERROR')) {
      return { type: 'rejected', httpStatus: obs.status, code: 'ERROR', message: comments(items, 'ERROR') || 'Cambio answered ResultCode ERROR', body: obs.body };
    }
    const info = comments(items, 'INFO');
    return { type: 'posted', httpStatus: obs.status, body: obs.body ?? obs.text, ...(info ? { note: info } : {}) };
  }
  return classify(obs, now);
}
