import { listenLoopback, readBody, sendJson, type RunningServer } from '../../shared/systems/sandbox.js';
import { submit } from '../../shared/core/intake.js';
import { recordPk, type AmbiguityPolicy, type Outcome, type PaymentRecord } from '../../shared/core/types.js';
import type { Stack } from '../../shared/local/stack.js';
import type { ReconcileResult, SystemModule } from '../../shared/systems/types.js';
import { eventually } from './stack.js';

/** A loopback server that counts what it receives per key: the test double's "downstream". */
export class CountingDownstream {
  readonly received = new Map<string, number>();
  /** When each key first arrived (epoch ms). */
  readonly firstAt = new Map<string, number>();
  private server: RunningServer | undefined;

  async start(): Promise<this> {
    this.server = await listenLoopback((req, res) => {
      void readBody(req).then((text) => {
        const { key } = JSON.parse(text) as { key: string };
        this.received.set(key, (this.received.get(key) ?? 0) + 1);
        if (!this.firstAt.has(key)) this.firstAt.set(key, Date.now());
        sendJson(res, 200, { ok: true, key });
      });
    });
    return this;
  }

  get url(): string {
    return (this.server as RunningServer).url;
  }

  count(key: string): number {
    return this.received.get(key) ?? 0;
  }

  close(): Promise<void> {
    return this.server?.close() ?? Promise.resolve();
  }
}

/** Never settles: what a worker that died (or froze) mid-attempt looks like from the outside. */
export const never = <T>() => new Promise<T>(() => undefined);

/**
 * A system whose post really sends to `downstream`, and can "die" after sending (the promise never
 * settles, so the lease expires), with the ambiguity policy under test.
 */
export function doubleSystem(
  name: string,
  policy: AmbiguityPolicy,
  downstream: CountingDownstream,
  opts: {
    dieAfterSend?: Set<string>;
    /** Keys whose next attempt never reaches the downstream (a worker that dies while getting ready). */
    dieBeforeSend?: Set<string>;
    /** Keys answered with this rejection instead of posting. */
    reject?: Map<string, Outcome>;
    reconcile?: (key: string) => ReconcileResult;
  } = {},
): SystemModule {
  return {
    name,
    ambiguity: policy,
    maxPerSecond: () => 1000,
    parse: ({ body }) => {
      const key = String((body as { key: string }).key);
      return { tenant: 't', key, request: { key } };
    },
    routeKey: (key) => ({ tenant: 't', key }),
    async post(request, ctx): Promise<Outcome> {
      const key = String(request.key);
      if (opts.dieBeforeSend?.delete(key)) return never<Outcome>();
      const rejection = opts.reject?.get(key);
      if (rejection) return rejection;
      // The attempt's own deadline, as a real client passes it to undici.
      const res = await fetch(downstream.url, { method: 'POST', body: JSON.stringify({ key }), signal: ctx.signal });
      await res.text();
      if (opts.dieAfterSend?.delete(key)) return never<Outcome>();
      return { type: 'posted', httpStatus: res.status, body: { key } };
    },
    ...(opts.reconcile ? { reconcile: async (record) => opts.reconcile!(record.key) } : {}),
    publicRequest: (r) => r,
  };
}

/**
 * The calls the double-system tests make against their stack (`stack()` is read on each call, since the
 * stack starts in `beforeAll`): the module, the record, a payment queued or sent in-process, and waits
 * for where it ends. `inlineOwner` names the route invocation that holds an in-process attempt.
 */
export function doubleCalls(stack: () => Stack, opts: { inlineOwner?: (key: string) => string } = {}) {
  const module = (system: string) => stack().deps.systems(system) as SystemModule;
  const record = (system: string, key: string) => stack().deps.store.get(recordPk(system, 't', key));
  const submitAs = (system: string, key: string, ids: { owner: string; deadline?: number }) =>
    submit(stack().deps, module(system), module(system).parse({ body: { key }, headers: {} }), { ...ids, correlationId: key });
  return {
    module,
    record,
    /** Queued (no deadline: the worker sends it), as a POS route would when busy. */
    queued: (system: string, key: string) => submitAs(system, key, { owner: 'test' }),
    /** Sent in-process, as the HTTP route does when the system is idle. */
    inline: (system: string, key: string) => submitAs(system, key, { owner: opts.inlineOwner?.(key) ?? 'route', deadline: Date.now() + 10_000 }),
    /** Waits (bounded) until the record has one of `statuses`. */
    settledAs: (system: string, key: string, statuses: string[]): Promise<PaymentRecord> =>
      eventually(async () => {
        const r = await record(system, key);
        return r && statuses.includes(r.status) ? r : undefined;
      }, 10_000),
    /** Sweeps until the record leaves the active statuses (bounded); every status seen on the way goes into `seen`. */
    sweepUntilSettled: (system: string, key: string, seen = new Set<string>()): Promise<PaymentRecord> =>
      eventually(async () => {
        await stack().sweepNow();
        const r = await record(system, key);
        if (r) seen.add(r.status);
        return r && !['retrying', 'reconciling'].includes(r.status) ? r : undefined;
      }, 10_000, 200),
  };
}
