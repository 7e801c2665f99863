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

/**
 * Whether a payment post's reply is the intake's answer for a first attempt it queued (202, `retrying`):
 * on a busy machine no lane permit or send slot may come within the intake's wait, and the queue's worker
 * then reaches, a moment later, the outcome the in-process attempt would have answered with (a 422
 * refusal, held, reconciling, matched...). Tests of such an outcome check it on the reply when the reply
 * is the in-process attempt's, and on the record (waitForStatus) when it is this one.
 */
export function queuedFirst(reply: Pick<Reply, 'status' | 'body'>): boolean {
  return reply.status === 202 && reply.body?.status === 'retrying';
}

/**
 * A payment's outcome as views to check alike: its record once it reaches one of `statuses`, and before
 * it the reply's body when the reply is the in-process attempt's (a record view: 200, 201 or 202). When
 * a busy machine queued the attempt (queuedFirst) the reply tells nothing yet: the record alone is checked.
 */
export async function outcomeViews(stack: Pick<Stack, 'url'>, reply: Reply, system: string, key: string, statuses: string[], timeoutMs = 15_000, headers: Record<string, string> = {}): Promise<any[]> {
  const record = await waitForStatus(stack, system, key, statuses, timeoutMs, headers);
  return queuedFirst(reply) ? [record] : [reply.body, record];
}

/**
 * A record's history events without the entries a busy machine's timing adds: a send stopped on its socket
 * past its slot, or a payment that found no send slot in time (each says nothing was sent). Tests that
 * check a history's exact course use this, so that course is what the downstream saw.
 */
export function historyEvents(rec: { history: { event: string; detail?: string }[] }): string[] {
  const timing = (h: { event: string; detail?: string }) =>
    (h.event === 'not_sent' && (h.detail ?? '').startsWith('past its send slot on the socket')) ||
    ((h.event === 'queued' || h.event === 'deferred') && /send slot/.test(h.detail ?? '') && /nothing was sent/.test(h.detail ?? ''));
  return rec.history.filter((h) => !timing(h)).map((h) => h.event);
}

/**
 * Holds the claim writes of keys starting with `prefix` (a DynamoDB request that does not answer) until the
 * returned release is called, or `atMostMs` has passed (bounded). The write itself is made afterwards.
 */
export function holdClaims(stack: Pick<Stack, 'deps'>, prefix: string, atMostMs: number): () => void {
  let release: () => void = () => undefined;
  const hold = new Promise<void>((r) => (release = r));
  const store = stack.deps.store;
  const claim = store.claim.bind(store);
  store.claim = async (record) => {
    if (record.key.startsWith(prefix)) await Promise.race([hold, new Promise((r) => setTimeout(r, atMostMs))]);
    return claim(record);
  };
  return release;
}
