import { rateInfoFrom } from './pacing.js';
import { statedWaitMs } from './retry-policy.js';
import { LATE_CODE } from './send-slot.js';
import type { Outcome } from './types.js';

/** What was observed of one downstream call, before any system-specific reading of the body. */
export type Observation =
  | {
      kind: 'response';
      status: number;
      headers: Record<string, string | string[] | undefined>;
      /** Parsed JSON when the body was JSON, else undefined. */
      body: unknown;
      text: string;
    }
  | {
      kind: 'error';
      /** False only when the request certainly never reached the downstream (connection refused, DNS). */
      sent: boolean;
      code: string;
      message: string;
    };

/** undici and Node error codes that prove the request was never sent. */
const NOT_SENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_CONNECT',
  // Stopped on its socket before anything was written (shared/systems/http.ts, leaveBy).
  LATE_CODE,
  // A part of undici left out of the bundle (shared/aws/esbuild-plugins.cjs) was reached: each throws
  // before anything is written (connect, the body's encoding, the parser's first load).
  'PAYBRIDGE_NOT_BUNDLED',
]);

export function requestWasNotSent(code: string): boolean {
  return NOT_SENT_CODES.has(code);
}

/** A short text from a downstream error body of any of the common shapes. */
export function bodyMessage(body: unknown, text: string): string {
  if (body && typeof body === 'object') {
    const b = body as Record<string, unknown>;
    for (const field of ['message', 'Message', 'error_description', 'error', 'title', 'detail', 'Comment']) {
      const v = b[field];
      if (typeof v === 'string' && v.trim()) return v.trim();
    }
  }
  const trimmed = text.trim();
  return trimmed.length > 300 ? `${trimmed.slice(0, 300)}…` : trimmed;
}

/**
 * DESIGN.md's outcomes table for a plain HTTP call. System modules read their own success and error
 * bodies first (Cambio's `ResultCode: ERROR` inside a 200) and fall back to this.
 */
export function classify(obs: Observation, now: number): Outcome {
  if (obs.kind === 'error') {
    return obs.sent
      ? { type: 'ambiguous', message: `${obs.code}: ${obs.message} (the request may have been received)` }
      : { type: 'retryable', message: `${obs.code}: ${obs.message} (the request was not sent)`, ...(obs.code === LATE_CODE ? { late: true as const } : {}) };
  }
  const { status } = obs;
  const message = bodyMessage(obs.body, obs.text) || `HTTP ${status}`;
  // What the downstream says of its limit travels with the outcome, for the shared limiter to learn.
  const rate = rateInfoFrom(obs.headers, now);
  if (status >= 200 && status < 300) return { type: 'posted', httpStatus: status, body: obs.body ?? obs.text, ...(rate ? { rate } : {}) };
  if (status === 429) {
    return { type: 'rate_limited', httpStatus: status, waitMs: statedWaitMs(obs.headers, obs.text, now), message, ...(rate ? { rate } : {}) };
  }
  if (status === 401 || status === 403) return { type: 'auth', httpStatus: status, message };
  // 503 means the service refused the work before doing it; 500/502/504 may come after it was done.
  if (status === 503) {
    return { type: 'retryable', httpStatus: status, waitMs: statedWaitMs(obs.headers, obs.text, now), message };
  }
  if (status >= 500 || status === 408) return { type: 'ambiguous', httpStatus: status, message };
  return { type: 'rejected', httpStatus: status, message, body: obs.body ?? obs.text };
}
