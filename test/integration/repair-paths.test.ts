import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { submit } from '../../shared/core/intake.js';
import { redrive, repost } from '../../shared/core/operator.js';
import { wakeWaiting } from '../../shared/core/recovery.js';
import { recordPk, type Outcome, type PaymentRecord } from '../../shared/core/types.js';
import type { Stack } from '../../shared/local/stack.js';
import { ConfigError, type ReconcileResult, type SystemModule } from '../../shared/systems/types.js';
import { CountingDownstream } from '../helpers/doubles.js';
import { call, eventually, testStack } from '../helpers/stack.js';

/**
 * Issue 19's repair-path defects, each as it was reproduced on main (5795570): a payment the downstream
 * may already hold is never sent again without a reconcile first, whichever way back an operator or a
 * caller takes (redrive, repost, a revision, a wake-up), and a body already superseded never becomes
 * the newest revision.
 */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const SETTLED = ['posted', 'failed', 'held', 'unknown'];

/**
 * A downstream like NIF's first generation: the POST stores the row, then (when told) answers 500 as if
 * the reply were lost; its read side lags `lagMs` behind its writes, as a real read replica may.
 */
function lossySystem(name: string, downstream: CountingDownstream, opts: { ambiguousAfterStore: Set<string>; reject: Map<string, Outcome>; configBroken: { on: boolean }; lagMs: number; storedAt: Map<string, number> }): SystemModule {
  return {
    name,
    ambiguity: 'reconcile',
    maxPerSecond: () => {
      if (opts.configBroken.on) throw new ConfigError(`${name.toUpperCase()}_MAX_RPS must be a number (got "ten")`, [`${name.toUpperCase()}_MAX_RPS`]);
      return 1000;
    },
    parse: ({ body }) => {
      const b = body as { key: string; amount?: number };
      return { tenant: 't', key: String(b.key), request: { key: String(b.key), amount: b.amount ?? 100 } };
    },
    routeKey: (key) => ({ tenant: 't', key }),
    async post(request, ctx): Promise<Outcome> {
      const key = String(request.key);
      const rejection = opts.reject.get(`${key}:${request.amount}`);
      if (rejection) return rejection;
      const res = await fetch(downstream.url, { method: 'POST', body: JSON.stringify({ key }), signal: ctx.signal });
      await res.text();
      opts.storedAt.set(key, Date.now());
      if (opts.ambiguousAfterStore.delete(key)) return { type: 'ambiguous', httpStatus: 500, message: 'HTTP 500 after the row was stored' };
      return { type: 'posted', httpStatus: 201, body: { key } };
    },
    async reconcile(record): Promise<ReconcileResult> {
      const at = opts.storedAt.get(record.key);
      // The read side has not caught up with a write younger than the lag.
      if (at === undefined || Date.now() - at < opts.lagMs) return { type: 'absent' };
      return downstream.count(record.key) > 0 ? { type: 'found', body: { key: record.key } } : { type: 'absent' };
    },
    publicRequest: (r) => r,
  };
}

describe('issue 19: repair paths never send what the downstream may hold', { timeout: 90_000 }, () => {
  let stack: Stack;
  const downstream = new CountingDownstream();
  const ambiguousAfterStore = new Set<string>();
  const reject = new Map<string, Outcome>();
  const configBroken = { on: false };
  const storedAt = new Map<string, number>();
  const SYSTEM = 'double-lossy';

  beforeAll(async () => {
    await downstream.start();
    stack = await testStack({
      settings: { attemptTimeoutMs: 1_500, settleMarginMs: 200, leaseMs: 2_000, reconcileDelayMs: 600 },
      queue: { invocationTimeoutMs: 4_000, visibilityTimeoutMs: 200 },
      brp: { ratePerSecond: 1000, faultWaitSeconds: 1 },
      kontantanalys: { ratePerSecond: 1000, faultWaitSeconds: 1 },
      kontantanalysSyncIntervalMs: false,
      modules: (built) => {
        const brp = built.get('brp') as SystemModule;
        return [
          lossySystem(SYSTEM, downstream, { ambiguousAfterStore, reject, configBroken, lagMs: 300, storedAt }),
          {
            ...brp,
            maxPerSecond: () => {
              if (configBroken.on) throw new ConfigError('BRP_MAX_RPS must be a number (got "two")', ['BRP_MAX_RPS']);
              return brp.maxPerSecond();
            },
          },
        ];
      },
    });
  });
  afterAll(async () => {
    configBroken.on = false;
    await stack?.close();
    await downstream.close();
  });

  const operator = () => ({ store: stack.deps.store, queue: stack.queue, clock: Date.now, fence: () => stack.deps.pacer.mintFence() });
  const module = () => stack.deps.systems(SYSTEM) as SystemModule;
  const record = (key: string, system = SYSTEM, tenant = 't') => stack.deps.store.get(recordPk(system, tenant, key));
  const queued = (key: string, amount = 100) => submit(stack.deps, module(), module().parse({ body: { key, amount }, headers: {} }), { owner: 'test', correlationId: key });
  const settled = (key: string, statuses = SETTLED, system = SYSTEM, tenant = 't') =>
    eventually(async () => {
      const r = await record(key, system, tenant);
      return r && statuses.includes(r.status) ? r : undefined;
      // Correctness, not timing: a busy machine defers sends for want of a slot, so the wait is generous.
    }, 30_000);

  /** A payment stored downstream whose answer was a 500, held by a configuration error while it was being reconciled. */
  async function heldAfterAmbiguous(key: string): Promise<PaymentRecord> {
    ambiguousAfterStore.add(key);
    await queued(key);
    await settled(key, ['reconciling']);
    configBroken.on = true;
    const held = await settled(key);
    configBroken.on = false;
    expect(held.status).toBe('held');
    expect(downstream.count(key)).toBe(1);
    return held;
  }

  it('defect 1: a held payment that got an ambiguous answer is reconciled by redrive, not sent again', async () => {
    const held = await heldAfterAmbiguous('d1-redrive');
    const done = await redrive(operator(), held.pk, 'ops');
    expect(done.ok).toBe(true);
    const end = await settled('d1-redrive', ['posted', 'failed', 'held', 'unknown']);
    await sleep(300);
    expect(downstream.count('d1-redrive')).toBe(1);
    expect(end.status).toBe('posted');
  });

  it('defect 1: repost of such a payment reconciles first too', async () => {
    const held = await heldAfterAmbiguous('d1-repost');
    const done = await repost(operator(), held.pk, 'ops', 'config fixed');
    expect(done.ok).toBe(true);
    const end = await settled('d1-repost', ['posted', 'failed', 'unknown']);
    await sleep(300);
    expect(downstream.count('d1-repost')).toBe(1);
    expect(end.status).toBe('posted');
  });

  it('defect 2: a BRP sale held after its receipt was requested is refused as a new sale (409) and never paid twice', async () => {
    const brp = stack.brp!;
    const sale = (customer: number) => ({
      externalId: 'd2-sale',
      businessUnitId: 3,
      customer: { personId: customer },
      rows: [{ productId: 10, quantity: 1 }],
      bookings: [],
      payment: { amount: 15_000, paymentMethodId: 1 },
    });
    brp.failNext('receipt', 'reset-after');
    const first = await call(stack, 'POST', '/v1/brp/sales', sale(4711));
    expect([201, 202]).toContain(first.status);
    // The reconcile comes due while the configuration is broken: held.
    configBroken.on = true;
    const held = await settled('d2-sale', SETTLED, 'brp', 'default');
    configBroken.on = false;
    expect(held.status).toBe('held');
    expect(brp.receipts.size).toBe(1);
    const again = await call(stack, 'POST', '/v1/brp/sales', sale(4712));
    expect(again.status).toBe(409);
    expect(again.body.detail).toMatch(/receipt/);
    // The operator's way back reuses what BRP holds: found, not paid again.
    const done = await repost(operator(), held.pk, 'ops', 'config fixed');
    expect(done.ok).toBe(true);
    const end = await settled('d2-sale', ['posted', 'failed', 'unknown'], 'brp', 'default');
    expect(end.status).toBe('posted');
    expect(brp.orders.size).toBe(1);
    expect(brp.receipts.size).toBe(1);
  });

  it('defect 3: a Kontantanalys object held on an update and reposted is updated, not created again', async () => {
    const ka = stack.kontantanalys!;
    const template = (hours: number) => ({ principalOrganisationId: 3, serviceTypeId: 3, serviceFormId: 4, openHoursPerWeek: hours, closedWeeksPerYear: 4 });
    const before = ka.count('template');
    const created = await call(stack, 'PUT', '/v1/kontantanalys/templates/d3-tpl', template(40));
    expect([201, 202]).toContain(created.status);
    await settled('templates:d3-tpl', ['posted'], 'kontantanalys', 'default');
    expect(ka.count('template')).toBe(before + 1);
    ka.faults.push('401', '401');
    await call(stack, 'PUT', '/v1/kontantanalys/templates/d3-tpl', template(41));
    const held = await settled('templates:d3-tpl', ['held'], 'kontantanalys', 'default');
    ka.faults.clear();
    const done = await repost(operator(), held.pk, 'ops', 'credentials renewed');
    expect(done.ok).toBe(true);
    const end = await settled('templates:d3-tpl', ['posted', 'failed', 'unknown'], 'kontantanalys', 'default');
    expect(end.status).toBe('posted');
    expect(ka.count('template')).toBe(before + 1);
  });

  it('defect 4: a wake-up after an outage does not read an ambiguous payment back before the reconcile delay', async () => {
    ambiguousAfterStore.add('d4-a');
    await queued('d4-a');
    const reconciling = await settled('d4-a', ['reconciling']);
    // Another payment's success ends "the outage": everything waiting is woken at once.
    await wakeWaiting(stack.deps, SYSTEM, stack.deps.log);
    const end = await settled('d4-a', ['posted', 'failed', 'held', 'unknown']);
    await sleep(300);
    expect(downstream.count('d4-a')).toBe(1);
    expect(end.status).toBe('posted');
    expect(reconciling.status).toBe('reconciling');
  });

  it('defect 5: a stale redelivery of a superseded revision never becomes the newest revision', async () => {
    reject.set('d5:100', { type: 'rejected', httpStatus: 422, code: 'UNKNOWN_PERSON', message: 'unknown person' });
    await queued('d5', 100);
    expect((await settled('d5')).status).toBe('failed');
    configBroken.on = true;
    const v2 = await queued('d5', 200);
    expect(v2.kind).toBe('revised');
    const held = await settled('d5');
    configBroken.on = false;
    expect(held).toMatchObject({ status: 'held', revision: 2 });
    const stale = await queued('d5', 100);
    expect(stale.kind).not.toBe('revised');
    const after = (await record('d5')) as PaymentRecord;
    expect(after.revision).toBe(2);
    expect(downstream.count('d5')).toBe(0);
  });

  it('defect 6: a checkpoint write whose reply was lost is recognised as its own (BRP: posted, one order)', async () => {
    const brp = stack.brp!;
    const orders = brp.orders.size;
    const store = stack.workerDeps.map((d) => d.store).concat(stack.deps.store);
    const originals = store.map((s) => s.replace.bind(s));
    let lost = false;
    store.forEach((s, i) => {
      s.replace = async (next, expected) => {
        const original = originals[i]!;
        if (!lost && next.system === 'brp' && next.key === 'd6-sale' && (next.checkpoints as { orderRequested?: boolean }).orderRequested === true && next.status !== 'posted') {
          lost = true;
          // The write is made, its reply is lost, and the SDK's retry fails its condition against it.
          await original(next, expected);
          return original(next, expected);
        }
        return original(next, expected);
      };
    });
    try {
      const sale = { externalId: 'd6-sale', businessUnitId: 3, customer: { personId: 4711 }, rows: [{ productId: 10, quantity: 1 }], bookings: [], payment: { amount: 15_000, paymentMethodId: 1 } };
      const first = await call(stack, 'POST', '/v1/brp/sales', sale);
      expect([201, 202]).toContain(first.status);
      const end = await settled('d6-sale', SETTLED, 'brp', 'default');
      expect(lost).toBe(true);
      expect(end.status).toBe('posted');
      expect(brp.orders.size).toBe(orders + 1);
    } finally {
      store.forEach((s, i) => {
        s.replace = originals[i]!;
      });
    }
  });
});
