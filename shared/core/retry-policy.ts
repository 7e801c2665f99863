/**
 * Retry timing as pure functions of the attempt count, the downstream's stated wait, the clock and a
 * random source (compare undici lib/handler/retry-handler.js and stripe-node's _shouldRetry).
 */

export interface BackoffSettings {
  baseMs: number;
  capMs: number;
}

export const DEFAULT_BACKOFF: BackoffSettings = { baseMs: 1_000, capMs: 15 * 60_000 };

/** SQS accepts DelaySeconds 0..900; longer waits are re-sent by the worker when the message arrives. */
export const SQS_MAX_DELAY_SECONDS = 900;

type HeaderBag = Record<string, string | string[] | undefined>;

function header(headers: HeaderBag, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() === wanted) return Array.isArray(v) ? v[0] : v;
  }
  return undefined;
}

/**
 * The wait a downstream asked for: `Retry-After` (seconds or an HTTP date), else a body such as
 * Cambio's "Rate limit is exceeded. Try again in 5 seconds." Undefined when nothing was stated.
 */
export function statedWaitMs(headers: HeaderBag, bodyText: string, now: number): number | undefined {
  const retryAfter = header(headers, 'retry-after')?.trim();
  if (retryAfter) {
    if (/^\d+$/.test(retryAfter)) return Number(retryAfter) * 1000;
    const date = Date.parse(retryAfter);
    if (!Number.isNaN(date)) return Math.max(0, date - now);
  }
  const match = /try again in (\d+(?:\.\d+)?)\s*(milliseconds?|ms|seconds?|secs?|s|minutes?|mins?|m)\b/i.exec(bodyText);
  if (match?.[1] && match[2]) {
    const unit = match[2].toLowerCase();
    const factor = unit === 'ms' || unit.startsWith('milli') ? 1 : unit.startsWith('m') ? 60_000 : 1000;
    return Math.round(Number(match[1]) * factor);
  }
  return undefined;
}

/** Exponential backoff with full jitter: uniform in [0, min(cap, base * 2^failures)). */
export function backoffMs(failures: number, random: () => number, settings: BackoffSettings = DEFAULT_BACKOFF): number {
  const exp = Math.min(settings.capMs, settings.baseMs * 2 ** Math.max(0, Math.min(failures, 30)));
  return Math.floor(random() * exp);
}

/**
 * The delay before the next attempt: the stated wait when there is one (never shortened, capped at
 * the backoff cap), plus a little jitter so a herd told "5 seconds" does not return in one instant;
 * otherwise full-jitter backoff, with a floor so a retry never spins.
 */
export function retryDelayMs(
  input: { failures: number; statedWaitMs?: number | undefined },
  random: () => number,
  settings: BackoffSettings = DEFAULT_BACKOFF,
): number {
  if (input.statedWaitMs !== undefined) {
    const jitter = Math.floor(random() * Math.min(1_000, Math.max(100, input.statedWaitMs / 10)));
    return Math.min(settings.capMs, input.statedWaitMs + jitter);
  }
  return Math.max(250, backoffMs(input.failures, random, settings));
}

/** The SQS DelaySeconds for a message that should be handled at `dueAt`: rounded up, never early. */
export function sqsDelaySeconds(dueAt: number, now: number): number {
  const seconds = Math.ceil(Math.max(0, dueAt - now) / 1000);
  return Math.min(SQS_MAX_DELAY_SECONDS, seconds);
}

/**
 * The DelaySeconds for a reserved send slot: rounded down, so the message arrives up to a second
 * early and the worker waits the rest in-process. Rounding up would make every message late by up
 * to a second, and the late ones of consecutive slots would arrive together as a burst that trips
 * the downstream's limit.
 */
export function sqsSlotDelaySeconds(slotAt: number, now: number): number {
  const seconds = Math.floor(Math.max(0, slotAt - now) / 1000);
  return Math.min(SQS_MAX_DELAY_SECONDS, seconds);
}
