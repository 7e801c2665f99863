import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { submit } from '../../shared/core/intake.js';
import type { AmbiguityPolicy, Outcome } from '../../shared/core/types.js';
import { sweep } from '../../shared/core/recovery.js';
import { buildDeps } from '../../shared/deps.js';
import type { Stack } from '../../shared/local/stack.js';
import { createLogger } from '../../shared/log.js';
import { memoryMetrics } from '../../shared/metrics.js';
import { NO_TABLE } from '../../shared/store/port.js';
import type { SystemDescription, SystemModule } from '../../shared/systems/types.js';
import { never } from '../helpers/doubles.js';
import { eventually, testStack } from '../helpers/stack.js';

const LEASE_MS = 600;
const POLICIES: AmbiguityPolicy[] = ['resend', 'reconcile', 'park'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A system whose send never settles: its attempt is left "sending" for the sweep to strand. */
function hanging(policy: AmbiguityPolicy): SystemModule {
  return {
    name: `hang-${policy}`,
    ambiguity: policy,
    maxPerSecond: () => 1000,
    parse: ({ body }) => ({ tenant: 't', key: String((body as { key: string }).key), request: { key: (body as { key: string }).key } }),
    routeKey: (key) => ({ tenant: 't', key }),
    post: () => never<Outcome>(),
    publicRequest: (r) => r,
  };
}

const DESCRIPTION_MEMBERS = new Set<PropertyKey>(['name', 'ambiguity', 'maxPerSecond', 'routeKey', 'afterSend', 'publicRequest'] satisfies (keyof SystemDescription)[]);

/** The system as the deployed sweep knows it: its description, and any read of a client member fails loudly. */
function describedOnly(module: SystemModule): SystemDescription {
  const { name, ambiguity, maxPerSecond, routeKey, publicRequest } = module;
  return new Proxy({ name, ambiguity, maxPerSecond, routeKey, publicRequest } as SystemDescription, {
    get(target, prop, receiver) {
      if (!DESCRIPTION_MEMBERS.has(prop)) throw new Error(`the sweep read ${String(prop)}, which a description does not have`);
      return Reflect.get(target, prop, receiver);
    },
  });
}

/**
 * The deployed sweep is given each system's description, not its client (issue 14; shared/deps.ts). This
 * runs the sweep's stranding over descriptions alone, for every ambiguity policy: if the sweep ever reads a
 * client member (post, parse, prepare, reconcile), the system's sweep fails and nothing is stranded.
 */
describe('the sweep works from system descriptions alone', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await testStack({
      settings: { leaseMs: LEASE_MS, attemptTimeoutMs: 300, settleMarginMs: 100 },
      // Nothing here is about the rate: a send a busy machine makes late still takes its slot, so the
      // first attempt stays in process instead of yielding to the queue.
      pacing: { marginMs: 500, lateMs: 400 },
      modules: () => POLICIES.map(hanging),
    });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it.each(POLICIES)('strands an attempt left sending, under policy %s, without a client', async (policy) => {
    const module = stack.deps.systems(`hang-${policy}`) as SystemModule;
    const key = `k-${policy}`;
    // With a deadline the first attempt is made in process: the record is written "sending", then never settles.
    void submit(stack.deps, module, module.parse({ body: { key }, headers: {} }), { owner: 'doomed', correlationId: key, deadline: Date.now() + 10_000 });
    const pk = `hang-${policy}#t#${key}`;
    // Only an in-process attempt leaves its record "sending" (a queue worker holds its attempt by a fence,
    // not a lease): the stack's pacing above keeps this one in process. A queued one never gets here.
    await eventually(async () => (await stack.deps.store.get(pk))?.sending === true, 15_000, 20);
    await sleep(LEASE_MS + 100);

    const described = buildDeps(stack.deps.config, {
      ...NO_TABLE,
      store: stack.deps.store,
      fences: stack.deps.fences,
      queue: stack.queue,
      descriptions: new Map([[module.name, describedOnly(module)]]),
      settings: stack.deps.settings,
      log: createLogger({}, 'silent'),
      metrics: memoryMetrics(),
    });
    // One container's limiter view, as awsDeps keeps it across refreshes.
    described.pacer = stack.deps.pacer;
    const report = await sweep(described, [module.name]);
    expect(report.stranded).toBe(1);
    const after = await stack.deps.store.get(pk);
    expect(after?.history.map((h) => h.event)).toContain('stranded');
    expect(after?.status).toBe({ resend: 'retrying', reconcile: 'reconciling', park: 'unknown' }[policy]);
  });

  it('the guard itself refuses a client member', () => {
    expect(() => (describedOnly(hanging('park')) as SystemModule).post).toThrow(/description does not have/);
  });
});
