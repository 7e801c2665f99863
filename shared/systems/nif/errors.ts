import { classify, type Observation } from '../../core/classify.js';
import type { Outcome } from '../../core/types.js';

/** The codes seeds 003 and 004 document, with a message an integration engineer can act on. */
export const NIF_CODES: Record<string, string> = {
  '3000': 'PeriodFrom and PeriodTo are not in the same year',
  '3001': 'no membership found for the person in the period',
  '3006': 'invalid period: PeriodFrom and PeriodTo',
  '3007': 'invalid paid date',
  '3008': 'invalid OrgId',
  '3009': 'invalid payment type',
  '3010': 'invalid period',
  '1006': 'invalid branch id',
  '1002': 'PersonId does not exist',
};

const CODE_FIELDS = ['code', 'Code', 'errorCode', 'ErrorCode', 'resultCode', 'ResultCode', 'statusCode', 'StatusCode', 'responseCode', 'status'];
const TEXT_FIELDS = ['message', 'Message', 'errorMessage', 'ErrorMessage', 'error', 'Error', 'detail', 'title', 'description'];

function known(v: unknown): string | undefined {
  const s = typeof v === 'number' ? String(v) : typeof v === 'string' ? v.trim() : '';
  return Object.hasOwn(NIF_CODES, s) ? s : undefined;
}

/**
 * The error body's shape is not documented: look for a documented code in the usual fields, one
 * level into `error`/`errors[0]`/`Errors[0]`, then as a number at the start of the text.
 */
export function findNifCode(body: unknown, text: string): { code?: string; message?: string } {
  const candidates: unknown[] = [body];
  if (body && typeof body === 'object') {
    const b = body as Record<string, unknown>;
    for (const nested of [b.error, b.Error, (b.errors as unknown[] | undefined)?.[0], (b.Errors as unknown[] | undefined)?.[0]]) {
      if (nested && typeof nested === 'object') candidates.push(nested);
    }
  }
  let message: string | undefined;
  for (const c of candidates) {
    if (!c || typeof c !== 'object') continue;
    const o = c as Record<string, unknown>;
    message ??= TEXT_FIELDS.map((f) => o[f]).find((v): v is string => typeof v === 'string' && v.trim() !== '');
    for (const f of CODE_FIELDS) {
      const code = known(o[f]);
      if (code) return { code, message: TEXT_FIELDS.map((t) => o[t]).find((v): v is string => typeof v === 'string') ?? message };
    }
  }
  const m = /(?:^|\b(?:code|kode)\s*[:=]?\s*)(\d{4})\b/i.exec(message ?? text.trim());
  const code = known(m?.[1]);
  return code ? { code, message: message ?? text.trim() } : { ...(message ? { message } : {}) };
}

/** NIF's answers: 2xx without an error code is posted; a documented code (even inside a 200) is a rejection. */
export function classifyNif(obs: Observation, now: number): Outcome {
  if (obs.kind === 'response') {
    const found = findNifCode(obs.body, obs.text);
    if (found.code) {
      const meaning = NIF_CODES[found.code] as string;
      const raw = found.message && found.message !== meaning ? ` (NIF said: ${found.message.slice(0, 300)})` : '';
      return { type: 'rejected', httpStatus: obs.status, code: found.code, message: `${meaning}${raw}`, body: obs.body ?? obs.text };
    }
  }
  return classify(obs, now);
}
