import { startStack, DEV_API_KEY, type Stack, type StackOptions } from '../../shared/local/stack.js';

export { DEV_API_KEY };

/**
 * A whole local stack on loopback for one test file: in-memory dynalite, sandboxes, no sweep timer.
 * Its queue hands a batch out as soon as a worker is free: the deployed one-second batching window
 * (which `npm start` and the benchmarks keep) added a second to every queue hop, more than the
 * bounded waits of the tests that chain several hops allow (brp.test.ts failed about one run in five).
 * `test/unit/queue/local.test.ts` and `drain.test.ts` exercise the window.
 */
export async function testStack(opts: StackOptions & { localQueue?: 'memory' } = {}): Promise<Stack> {
  return startStack({
    port: 0,
    localQueue: 'memory',
    sweepIntervalMs: false,
    ...opts,
    queue: { batchingWindowMs: 0, ...opts.queue },
    env: { LOG_LEVEL: 'silent', API_KEYS: DEV_API_KEY, ...opts.env },
    // One machine, one clock: no skew to wait out before an unfinished attempt is taken as ended.
    settings: { sweepGraceMs: 0, clockSkewMs: 0, ...opts.settings },
  });
}

export interface Reply {
  status: number;
  headers: Headers;
  body: any;
}

export async function call(
  stack: Pick<Stack, 'url'>,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Reply> {
  const res = await fetch(`${stack.url}${path}`, {
    method,
    headers: {
      'x-api-key': DEV_API_KEY,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(20_000),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

/** Polls until `check` returns a value, at most `timeoutMs`: every wait in the tests is bounded. */
export async function eventually<T>(check: () => Promise<T | undefined | false>, timeoutMs = 15_000, stepMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, stepMs));
  }
  throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${(last as Error).message}` : ''}`);
}

/** The status route's record of a payment, as the caller `headers` name (the dev key's caller by default) sees it. */
export async function statusOf(stack: Pick<Stack, 'url'>, system: string, key: string, headers: Record<string, string> = {}): Promise<any> {
  const r = await call(stack, 'GET', `/v1/payments/${system}/${encodeURIComponent(key)}`, undefined, headers);
  return r.status === 200 ? r.body : undefined;
}

/**
 * Waits for a payment's record to reach one of `statuses`. A payment post answers 201 when its first
 * attempt was made in process and 202 when a loaded machine queued it (no lane permit or slot within
 * the intake's wait): tests accept either and wait here for the outcome they check.
 */
export async function waitForStatus(stack: Pick<Stack, 'url'>, system: string, key: string, statuses: string[], timeoutMs = 15_000, headers: Record<string, string> = {}): Promise<any> {
  return eventually(async () => {
    const rec = await statusOf(stack, system, key, headers);
    return rec && statuses.includes(rec.status) ? rec : undefined;
  }, timeoutMs);
}
