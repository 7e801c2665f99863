// undici's package entry loads all of undici (fetch, WebSocket, the cache, mocks, proxies): in a
// bundle that is ~45 % of a payment function and most of its cold import (issue 23). Its CommonJS
// index cannot be tree-shaken, so the two modules the clients use are imported directly: the pooled
// Agent and the request API (the function the entry installs as Dispatcher.prototype.request). Same
// code, same timeouts, aborts and keep-alive; test/unit/systems/http.test.ts shows a hung downstream
// still cut at the deadline, test/unit/bundles.test.ts that fetch and WebSocket stay out.
import type { Dispatcher } from 'undici';
import Agent from 'undici/lib/dispatcher/agent.js';
import request from 'undici/lib/api/api-request.js';
import { classify, requestWasNotSent, type Observation } from '../core/classify.js';
import { LATE_CODE, takeSendSlot, withoutSendSlot, type SlotGuard } from '../core/send-slot.js';

export { LATE_CODE };
import type { Outcome } from '../core/types.js';

export interface HttpTimeouts {
  connectMs: number;
  /** Waiting for the response headers after the request was sent: past this the outcome is ambiguous. */
  headersMs: number;
  bodyMs: number;
}

// Short enough that a token fetch plus a post fit inside API Gateway's 29 s integration timeout.
export const DEFAULT_TIMEOUTS: HttpTimeouts = { connectMs: 4_000, headersMs: 10_000, bodyMs: 10_000 };

/**
 * One keep-alive pool per process. Keep-alive is kept short: a Lambda frozen between invocations
 * wakes with sockets the server has already closed (stripe-node src/RequestSender.ts hit the same).
 */
export function makeDispatcher(timeouts: HttpTimeouts = DEFAULT_TIMEOUTS): Dispatcher {
  return new Agent({ connect: { timeout: timeouts.connectMs }, keepAliveTimeout: 4_000, keepAliveMaxTimeout: 10_000 });
}

let shared: Dispatcher | undefined;

/** The process's pool, made on first use: every system client of a deployed function shares it, across parameter refreshes. */
export function sharedDispatcher(): Dispatcher {
  shared ??= makeDispatcher();
  return shared;
}

export interface HttpCall {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
  headers: Record<string, string>;
  body?: string;
  /** The attempt's deadline: no request starts after it, and one in flight is aborted (its socket destroyed). */
  signal?: AbortSignal | undefined;
}

/**
 * `dispatcher` for one request that must leave by `leaveBy`. undici calls a handler's onConnect on the
 * socket, just before it writes the request (client-h1.js writeH1: nothing is written once it aborts
 * there). A send checked against its slot can still be held up between that check and the socket by a
 * busy event loop (30 to 56 ms measured on the local stack in a burst, where the pacing allows 30): such
 * a send would land one call too many in the downstream's rolling window, and its 429 pauses every sender.
 */
function leavingBy(dispatcher: Dispatcher, { leaveBy, withdrawn, mayLeaveLate }: SlotGuard): Pick<Dispatcher, 'dispatch'> {
  return {
    dispatch: (opts, handler) =>
      dispatcher.dispatch(
        opts,
        new Proxy(handler, {
          get(target, prop) {
            if (prop === 'onConnect') {
              return (abort: (err?: Error) => void, context?: unknown) => {
                const why = withdrawn?.();
                if (why) return abort(Object.assign(new Error(`${why}; nothing was written`), { code: LATE_CODE }));
                // Late: unless its permit may move to now (a lane with room there).
                const now = Date.now();
                if (now > leaveBy && !mayLeaveLate?.(now)) return abort(Object.assign(new Error(`the request reached its socket ${now - leaveBy} ms after its send slot allowed; nothing was written`), { code: LATE_CODE }));
                return (target as { onConnect?: (abort: (err?: Error) => void, context?: unknown) => void }).onConnect?.(abort, context);
              };
            }
            const value: unknown = Reflect.get(target, prop, target);
            return typeof value === 'function' ? value.bind(target) : value;
          },
        }),
      ),
  };
}

/** Error codes of a request stopped by its attempt's deadline. */
const ABORT_CODES = new Set(['UND_ERR_ABORTED', 'ABORT_ERR', 'AbortError', 'TimeoutError']);

/** Sends one request and reports what was observed; never throws for a network or HTTP failure. */
export async function observe(dispatcher: Dispatcher, call: HttpCall, timeouts: HttpTimeouts = DEFAULT_TIMEOUTS): Promise<Observation> {
  if (call.signal?.aborted) {
    // Checked before the request exists: an attempt past its deadline never sends (issue 10).
    return { kind: 'error', sent: false, code: 'DEADLINE', message: 'the attempt reached its deadline before this request was sent' };
  }
  try {
    // What the package entry's request(url, options) does before it dispatches: split the URL.
    const url = new URL(call.url);
    // The attempt's send slot (shared/core/send-slot.ts), when this is its first writing request.
    const guard = takeSendSlot(call.method);
    // request() only calls this.dispatch: the guard needs no whole Dispatcher.
    const res = await request.call(guard === undefined ? dispatcher : (leavingBy(dispatcher, guard) as Dispatcher), {
      origin: url.origin,
      path: `${url.pathname}${url.search}`,
      method: call.method,
      headers: call.headers,
      body: call.body,
      headersTimeout: timeouts.headersMs,
      bodyTimeout: timeouts.bodyMs,
      ...(call.signal ? { signal: call.signal } : {}),
    });
    const text = await res.body.text();
    let body: unknown;
    const type = String(res.headers['content-type'] ?? '');
    if (text && (type.includes('json') || /^\s*[[{]/.test(text))) {
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
    }
    return { kind: 'response', status: res.statusCode, headers: res.headers as Record<string, string | string[] | undefined>, body, text };
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
    const code = e.code ?? e.cause?.code ?? e.name ?? 'ERROR';
    if (ABORT_CODES.has(code) || ABORT_CODES.has(e.name)) {
      // Aborted mid-request: it may have been received, so ambiguous like any other cut-off send.
      return { kind: 'error', sent: true, code: 'DEADLINE', message: 'the attempt reached its deadline while the request was in flight' };
    }
    return { kind: 'error', sent: !requestWasNotSent(code), code, message: e.message };
  }
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

/**
 * An OAuth2 bearer cached until shortly before it expires, fetched once however many posts wait for
 * it (single flight). A failure to get a token always means the payment was not sent, so it maps to
 * retryable, rate limited or auth, never to ambiguous.
 */
export class TokenCache {
  private cached: CachedToken | undefined;
  private inFlight: Promise<CachedToken | Outcome> | undefined;

  constructor(
    private readonly fetchToken: (signal?: AbortSignal) => Promise<Observation>,
    private readonly clock: () => number,
    private readonly label: string,
    private readonly earlyRefreshMs = 30_000,
  ) {}

  /**
   * The cached token, or a fetched one. `signal` bounds this caller's wait: the shared fetch has its own
   * timeouts and serves whoever still waits, but an attempt past its deadline stops waiting at once.
   */
  async get(signal?: AbortSignal): Promise<{ token: string } | { outcome: Outcome }> {
    const now = this.clock();
    if (this.cached && this.cached.expiresAt - this.earlyRefreshMs > now) return { token: this.cached.token };
    if (signal?.aborted) return { outcome: { type: 'retryable', message: `${this.label} token not fetched: the attempt reached its deadline (payment not sent)` } };
    this.inFlight ??= this.fetch().finally(() => {
      this.inFlight = undefined;
    });
    const got = signal ? await Promise.race([this.inFlight, aborted(signal, this.label)]) : await this.inFlight;
    return 'token' in got ? { token: got.token } : { outcome: got };
  }

  /** Drops the cached token if it is still the one that was refused. */
  invalidate(token: string): void {
    if (this.cached?.token === token) this.cached = undefined;
  }

  private async fetch(): Promise<CachedToken | Outcome> {
    // Not the attempt's send: never held to its slot (shared/core/send-slot.ts), whichever attempt started it.
    const obs = await withoutSendSlot(() => this.fetchToken());
    const now = this.clock();
    if (obs.kind === 'response' && obs.status >= 200 && obs.status < 300) {
      const body = obs.body as { access_token?: unknown; expires_in?: unknown } | undefined;
      if (typeof body?.access_token === 'string' && body.access_token) {
        const ttl = Number(body.expires_in);
        const expiresAt = now + (Number.isFinite(ttl) && ttl > 0 ? ttl * 1000 : 300_000);
        this.cached = { token: body.access_token, expiresAt };
        return this.cached;
      }
      return { type: 'retryable', httpStatus: obs.status, message: `${this.label} token endpoint answered without an access_token` };
    }
    const outcome = classify(obs, now);
    switch (outcome.type) {
      case 'rate_limited':
        return { ...outcome, message: `${this.label} token endpoint: ${outcome.message}` };
      case 'rejected':
      case 'auth':
        // 400 invalid_client / 401: the configured client credentials are wrong. Held until fixed.
        return { type: 'auth', ...(outcome.httpStatus ? { httpStatus: outcome.httpStatus } : {}), message: `${this.label} token endpoint refused the client credentials: ${outcome.message}` };
      default:
        return { type: 'retryable', ...('httpStatus' in outcome && outcome.httpStatus ? { httpStatus: outcome.httpStatus } : {}), message: `${this.label} token endpoint unavailable (payment not sent): ${'message' in outcome ? outcome.message : 'unexpected answer'}` };
    }
  }
}

function aborted(signal: AbortSignal, label: string): Promise<Outcome> {
  return new Promise((resolve) => {
    const done = () => resolve({ type: 'retryable', message: `${label} token not fetched in time: the attempt reached its deadline (payment not sent)` });
    if (signal.aborted) done();
    else signal.addEventListener('abort', done, { once: true });
  });
}

/** A form-encoded token request: OAuth2 client credentials (Cambio, NIF) or the password grant (Kontantanalys). */
export function tokenRequest(dispatcher: Dispatcher, url: string, form: Record<string, string>): () => Promise<Observation> {
  return () =>
    observe(dispatcher, {
      method: 'POST',
      url,
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams(form).toString(),
    });
}

/**
 * Sends with the cached bearer. On one of `refreshOn` the token is dropped and the call made exactly
 * once more: a refused call did nothing downstream, so repeating it is safe. Anything else is returned
 * for the system's own error mapping.
 */
export async function sendWithBearer(
  tokens: TokenCache,
  send: (token: string) => Promise<Observation>,
  refreshOn: readonly number[] = [401, 403],
  signal?: AbortSignal,
): Promise<{ obs: Observation } | { outcome: Outcome }> {
  for (let attempt = 0; ; attempt++) {
    const got = await tokens.get(signal);
    if ('outcome' in got) return got;
    const obs = await send(got.token);
    if (attempt === 0 && obs.kind === 'response' && refreshOn.includes(obs.status)) {
      tokens.invalidate(got.token);
      continue;
    }
    return { obs };
  }
}
