import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Shared parts of the sandbox simulators: a loopback HTTP server, rate limiters that behave like the
 * real gateways, and fault injection (one-shot faults queued through the control route, or random
 * ones at a rate).
 */

/** `none` answers normally: it lets a test queue a fault for the second call of a step. */
export const FAULTS = ['none', '429', '500', '502', '503', '504', '401', '403', 'reset-before', 'reset-after', 'hang-after'] as const;
export type Fault = (typeof FAULTS)[number];

/**
 * How a sandbox refuses calls past its rate. The real gateways in front of NIF and Cambio are Azure
 * API Management's `rate-limit` policy, documented as "the sliding window during which the number
 * of allowed requests should not exceed the value specified in `calls`"
 * (https://learn.microsoft.com/azure/api-management/rate-limit-policy, attribute `renewal-period`):
 * a call is refused when the last window already holds `calls` allowed calls, whatever happened
 * before, and only allowed calls are counted, so hammering through a 429 does not push the wait out.
 * `rolling` is that, and the default, so local runs and benchmarks meet the limit they will meet in
 * production. `fixed` (windows aligned to multiples of windowMs, which let 2R through across a
 * boundary) and `bucket` (capacity R, refilled at R/s: the forgiving limiter the sandboxes had
 * before) stay available to compare against.
 */
export const LIMITER_KINDS = ['rolling', 'fixed', 'bucket'] as const;
export type LimiterKind = (typeof LIMITER_KINDS)[number];

/** `remaining`: calls the limiter would still accept right now (APIM's remaining-calls header). */
export type LimiterDecision = { ok: true; remaining: number } | { ok: false; waitMs: number };

export interface Limiter {
  readonly kind: LimiterKind;
  /** Takes a slot at `now` (epoch ms), or says exactly how many ms until a call would be accepted. */
  take(now: number): LimiterDecision;
}

export interface LimiterSettings {
  kind: LimiterKind;
  ratePerSecond: number;
  windowMs: number;
}

/** A caller asked for a limiter that cannot exist (unknown kind, rate not a positive number, ...). */
export class LimiterSettingsError extends Error {
  override readonly name = 'LimiterSettingsError';
}

export function isLimiterKind(v: unknown): v is LimiterKind {
  return typeof v === 'string' && (LIMITER_KINDS as readonly string[]).includes(v);
}

/** What is wrong with these settings, in words a caller can act on; undefined when they are fine. */
export function limiterSettingsProblem(kind: unknown, ratePerSecond: unknown, windowMs = 1000): string | undefined {
  if (kind === undefined) return `kind is required; known: ${LIMITER_KINDS.join(', ')}`;
  if (!isLimiterKind(kind)) return `unknown limiter kind ${JSON.stringify(kind)}; known: ${LIMITER_KINDS.join(', ')}`;
  if (typeof ratePerSecond !== 'number' || !Number.isFinite(ratePerSecond) || ratePerSecond <= 0) {
    return `ratePerSecond must be a positive number, got ${typeof ratePerSecond === 'number' ? ratePerSecond : JSON.stringify(ratePerSecond)}`;
  }
  if (!(Number.isInteger(windowMs) && windowMs > 0)) return `windowMs must be a positive whole number of ms, got ${windowMs}`;
  // APIM's `calls` is a whole number per window: a window that holds 2.5 calls has no real counterpart.
  const calls = (ratePerSecond * windowMs) / 1000;
  if (kind !== 'bucket' && !(Number.isInteger(calls) && calls >= 1)) {
    return `ratePerSecond ${ratePerSecond} gives ${calls} calls per ${windowMs} ms window; the ${kind} limiter needs a whole number of at least 1`;
  }
  return undefined;
}

/**
 * Strict sliding window: refuses when (now - windowMs, now] already holds `calls` accepted calls.
 * Keeps the accepted times still inside the window: at most `calls` of them, unless it was seeded
 * with more after a run-time switch.
 */
export class RollingWindowLimiter implements Limiter {
  readonly kind = 'rolling';
  private times: number[] = [];
  private head = 0;

  constructor(
    private readonly calls: number,
    private readonly windowMs = 1000,
    recentAccepted: readonly number[] = [],
  ) {
    // Seeded with what was accepted just before (a run-time switch), so the switch itself opens no burst.
    for (const t of recentAccepted) this.times.push(t);
    this.times.sort((a, b) => a - b);
  }

  take(now: number): LimiterDecision {
    while (this.head < this.times.length && (this.times[this.head] as number) <= now - this.windowMs) this.head++;
    // Compact now and then so the array does not grow with every call ever accepted.
    if (this.head > 64 && this.head * 2 > this.times.length) {
      this.times = this.times.slice(this.head);
      this.head = 0;
    }
    const inWindow = this.times.length - this.head;
    if (inWindow >= this.calls) {
      // The call is accepted once enough of the oldest ones have left the window.
      const oldest = this.times[this.times.length - this.calls] as number;
      return { ok: false, waitMs: oldest + this.windowMs - now };
    }
    this.times.push(now);
    return { ok: true, remaining: this.calls - inWindow - 1 };
  }
}

/** Fixed windows [k·windowMs, (k+1)·windowMs): up to `calls` in each, so 2·calls can pass across a boundary. */
export class FixedWindowLimiter implements Limiter {
  readonly kind = 'fixed';
  private windowStart = Number.NEGATIVE_INFINITY;
  private count = 0;

  constructor(
    private readonly calls: number,
    private readonly windowMs = 1000,
    private readonly recentAccepted: readonly number[] = [],
  ) {}

  take(now: number): LimiterDecision {
    const start = Math.floor(now / this.windowMs) * this.windowMs;
    if (start !== this.windowStart) {
      this.windowStart = start;
      // Only the first window after a switch can hold calls accepted before it.
      this.count = this.recentAccepted.filter((t) => t >= start && t <= now).length;
    }
    if (this.count >= this.calls) return { ok: false, waitMs: start + this.windowMs - now };
    this.count++;
    return { ok: true, remaining: this.calls - this.count };
  }
}

/** Token bucket: capacity `capacity` (R by default), refilled continuously at `perSecond`. */
export class TokenBucketLimiter implements Limiter {
  readonly kind = 'bucket';
  private tokens: number;
  private last: number | undefined;

  constructor(
    private readonly perSecond: number,
    private readonly capacity = Math.max(1, perSecond),
  ) {
    this.tokens = capacity;
  }

  take(now: number): LimiterDecision {
    if (this.last !== undefined) this.tokens = Math.min(this.capacity, this.tokens + (Math.max(0, now - this.last) / 1000) * this.perSecond);
    this.last = now;
    // A float refill can land a hair under 1 at the very ms the stated wait ends: that still counts.
    if (this.tokens >= 1 - 1e-9) {
      this.tokens = Math.max(0, this.tokens - 1);
      return { ok: true, remaining: Math.floor(this.tokens + 1e-9) };
    }
    return { ok: false, waitMs: Math.ceil(((1 - this.tokens) / this.perSecond) * 1000) };
  }
}

/** A limiter of `kind`; throws LimiterSettingsError for settings no gateway could have. */
export function createLimiter(kind: LimiterKind, ratePerSecond: number, windowMs = 1000, recentAccepted: readonly number[] = []): Limiter {
  const problem = limiterSettingsProblem(kind, ratePerSecond, windowMs);
  if (problem) throw new LimiterSettingsError(problem);
  const calls = Math.round((ratePerSecond * windowMs) / 1000);
  switch (kind) {
    case 'rolling':
      return new RollingWindowLimiter(calls, windowMs, recentAccepted);
    case 'fixed':
      return new FixedWindowLimiter(calls, windowMs, recentAccepted);
    case 'bucket':
      return new TokenBucketLimiter(ratePerSecond);
  }
}

/**
 * The most accepted calls seen in any window of `windowMs` (1,000 ms by default): what a benchmark
 * reads to prove the downstream's limit was never exceeded by what got through. Any busiest window
 * can be slid to end on an accepted call, so checking the window ending at each accepted call finds it.
 */
export class WindowPeak {
  private times: number[] = [];
  private head = 0;
  max = 0;

  constructor(private readonly windowMs = 1000) {}

  record(now: number): void {
    this.prune(now);
    this.times.push(now);
    this.max = Math.max(this.max, this.times.length - this.head);
  }

  /** Accepted times still inside the window ending at `now`, oldest first. */
  recent(now: number): number[] {
    this.prune(now);
    return this.times.slice(this.head);
  }

  reset(): void {
    this.times = [];
    this.head = 0;
    this.max = 0;
  }

  private prune(now: number): void {
    while (this.head < this.times.length && (this.times[this.head] as number) <= now - this.windowMs) this.head++;
    if (this.head > 64 && this.head * 2 > this.times.length) {
      this.times = this.times.slice(this.head);
      this.head = 0;
    }
  }
}

/**
 * A sandbox's rate limit as one object: the limiter in force, switchable at run time, and the
 * peak of what it let through. Each sandbox asks it once per call that reaches its limit.
 */
export class SandboxRateLimit {
  private limiter: Limiter;
  private current: LimiterSettings;
  private readonly peak = new WindowPeak(1000);
  private readonly acceptListeners: ((at: number) => void)[] = [];

  constructor(
    kind: LimiterKind,
    ratePerSecond: number,
    private readonly clock: () => number = Date.now,
  ) {
    this.limiter = createLimiter(kind, ratePerSecond);
    this.current = { kind, ratePerSecond, windowMs: 1000 };
  }

  get settings(): LimiterSettings {
    return { ...this.current };
  }

  get maxInAnyWindow(): number {
    return this.peak.max;
  }

  /** Calls allowed per window: APIM's `calls`, or a bucket's capacity. */
  get calls(): number {
    return Math.max(1, Math.round((this.current.ratePerSecond * this.current.windowMs) / 1000));
  }

  /**
   * Switches limiter and/or rate. A new rolling or fixed limiter counts the calls accepted in the
   * last second, so switching opens no burst; a new bucket starts full, as a freshly configured one does.
   */
  set(kind: LimiterKind, ratePerSecond = this.current.ratePerSecond): LimiterSettings {
    this.limiter = createLimiter(kind, ratePerSecond, 1000, this.peak.recent(this.clock()));
    this.current = { kind, ratePerSecond, windowMs: 1000 };
    return this.settings;
  }

  take(): LimiterDecision {
    const now = this.clock();
    const decision = this.limiter.take(now);
    if (decision.ok) {
      this.peak.record(now);
      for (const listener of this.acceptListeners) listener(now);
    }
    return decision;
  }

  /**
   * Hears the time of every call the limit lets through: what a benchmark running the sandbox in a
   * process of its own reports as the downstream's acceptances (test/bench/limit.ts).
   */
  onAccept(listener: (at: number) => void): void {
    this.acceptListeners.push(listener);
  }

  resetPeak(): void {
    this.peak.reset();
  }
}

/** Whole seconds for a `Retry-After` header, never 0: a 429 that says "retry in 0 s" invites a hot loop. */
export function retryAfterSeconds(waitMs: number): number {
  return Math.max(1, Math.ceil(waitMs / 1000));
}

/**
 * The 429 Azure API Management's rate-limit policy sends (the header named by
 * `retry-after-header-name`, default `Retry-After`, and this body), as shown in Microsoft's guide
 * https://learn.microsoft.com/microsoft-cloud/dev/dev-proxy/concepts/implement-rate-limiting-azure-api-management
 */
export function apimRateLimited(waitMs: number): { headers: Record<string, string>; body: { statusCode: 429; message: string } } {
  const seconds = retryAfterSeconds(waitMs);
  return { headers: { 'retry-after': String(seconds) }, body: { statusCode: 429, message: `Rate limit is exceeded. Try again in ${seconds} seconds.` } };
}

/**
 * What APIM adds when the policy is configured with `remaining-calls-header-name` and
 * `total-calls-header-name` (off unless configured; APIM has no reset header). The names are the
 * ones Microsoft's guide above configures.
 */
export function apimRateLimitHeaders(remaining: number, calls: number): Record<string, string> {
  return { 'ratelimit-remaining': String(Math.max(0, remaining)), 'ratelimit-limit': String(calls) };
}

/** `POST /__sandbox/limiter` body → the settings to apply, or a message for a 400. */
export function parseLimiterRequest(body: string, current: LimiterSettings): { ok: true; kind: LimiterKind; ratePerSecond: number } | { ok: false; message: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body || '{}');
  } catch {
    return { ok: false, message: 'body must be JSON like {"kind":"rolling","ratePerSecond":10}' };
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return { ok: false, message: 'body must be a JSON object like {"kind":"rolling","ratePerSecond":10}' };
  const { kind, ratePerSecond = current.ratePerSecond } = parsed as { kind?: unknown; ratePerSecond?: unknown };
  const problem = limiterSettingsProblem(kind, ratePerSecond, current.windowMs);
  if (problem) return { ok: false, message: problem };
  return { ok: true, kind: kind as LimiterKind, ratePerSecond: ratePerSecond as number };
}

/** Answers `POST /__sandbox/limiter`: 200 with the settings now in force, or 400 saying what is wrong. */
export function answerLimiterRequest(body: string, res: ServerResponse, current: LimiterSettings, apply: (kind: LimiterKind, ratePerSecond: number) => LimiterSettings): void {
  const asked = parseLimiterRequest(body, current);
  if (!asked.ok) return sendJson(res, 400, { message: asked.message });
  return sendJson(res, 200, apply(asked.kind, asked.ratePerSecond));
}

/**
 * Answers `POST /__sandbox/faults` with `{"faults": ["403", "403"]}`: queues one-shot faults for the
 * next calls, in order (`none` lets a call through). 204 when queued; 400 saying what is wrong (not JSON,
 * not a list, an unknown fault) rather than a 500. The same on every sandbox, so a recipe can address any.
 */
export function answerFaultsRequest(body: string, res: ServerResponse, plan: FaultPlan): void {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body || '{}');
  } catch {
    return sendJson(res, 400, { message: 'body must be JSON like {"faults":["403","403"]}' });
  }
  const faults = (parsed as { faults?: unknown } | null)?.faults;
  if (!Array.isArray(faults) || faults.some((f) => typeof f !== 'string')) return sendJson(res, 400, { message: `body must be {"faults": [...]} with faults from: ${FAULTS.join(', ')}` });
  const bad = (faults as string[]).filter((f) => !FAULTS.includes(f as Fault));
  if (bad.length) return sendJson(res, 400, { message: `unknown faults: ${bad.join(', ')}; known: ${FAULTS.join(', ')}` });
  plan.push(...(faults as Fault[]));
  res.writeHead(204);
  res.end();
}

/** `SANDBOX_<NAME>_LIMITER` → a kind; unknown names are refused by name, as fault names are. */
export function parseLimiterKind(text: string | undefined, name = 'SANDBOX_<NAME>_LIMITER'): LimiterKind | undefined {
  const t = text?.trim();
  if (!t) return undefined;
  if (!isLimiterKind(t)) throw new LimiterSettingsError(`${name}: unknown limiter kind "${t}"; known: ${LIMITER_KINDS.join(', ')}`);
  return t;
}

/** A small seeded PRNG (mulberry32) so a run with random faults can be repeated. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class FaultPlan {
  private readonly queued: Fault[] = [];

  constructor(
    private rates: Partial<Record<Fault, number>> = {},
    private readonly random: () => number = seededRandom(42),
  ) {}

  push(...faults: Fault[]): void {
    this.queued.push(...faults);
  }

  setRates(rates: Partial<Record<Fault, number>>): void {
    this.rates = rates;
  }

  clear(): void {
    this.queued.length = 0;
    this.rates = {};
  }

  /** The fault for the next call, if any. */
  next(): Fault | undefined {
    const q = this.queued.shift();
    if (q) return q;
    let roll = this.random();
    for (const [fault, rate] of Object.entries(this.rates) as [Fault, number][]) {
      if (roll < rate) return fault;
      roll -= rate;
    }
    return undefined;
  }
}

/** "429:0.05,500:0.01" → { '429': 0.05, '500': 0.01 }; unknown faults are refused by name. */
export function parseFaultRates(text: string | undefined): Partial<Record<Fault, number>> {
  const out: Partial<Record<Fault, number>> = {};
  for (const part of (text ?? '').split(',').map((p) => p.trim()).filter(Boolean)) {
    const [name, rate] = part.split(':');
    if (!FAULTS.includes(name as Fault)) throw new Error(`unknown sandbox fault "${name}"; known: ${FAULTS.join(', ')}`);
    const r = Number(rate);
    if (!(r >= 0 && r <= 1)) throw new Error(`sandbox fault rate for ${name} must be between 0 and 1`);
    out[name as Fault] = r;
  }
  return out;
}

export async function readBody(req: IncomingMessage, limit = 1024 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new Error('body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export interface RunningServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1 only (port 0 picks a free one). Open sockets are destroyed on close. */
export async function listenLoopback(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  port = 0,
  /** More listeners on the server before it listens (the local gateway's `clientError` answer). */
  setup?: (server: Server) => void,
): Promise<RunningServer> {
  const server: Server = createServer(handler);
  setup?.(server);
  const sockets = new Set<import('node:net').Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${actual}`,
    port: actual,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
