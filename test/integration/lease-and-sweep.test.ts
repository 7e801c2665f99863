import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { submit } from '../../shared/core/engine.js';
import { recordPk } from '../../shared/core/types.js';
import type { Stack } from '../../shared/local/stack.js';
import type { SystemModule } from '../../shared/systems/types.js';
import { call, eventually, testStack, waitForStatus } from '../helpers/stack.js';
import { CountingDownstream, doubleSystem } from '../helpers/doubles.js';

const LEASE_MS = 300;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('expired leases, lost messages and crashes', () => {
  let stack: Stack;
  const downstream = new CountingDownstream();
  const dying = new Set<string>();
  let cambioFirstSendDies = false;

  beforeAll(async () => {
    await downstream.start();
    stack = await testStack({
      settings: { leaseMs: LEASE_MS },
      cambio: { ratePerSecond: 1000, faultWaitSeconds: 1 },
      queue: { visibilityTimeoutMs: 50, maxReceiveCount: 3 },
      modules: (built) => {
        const cambio = built.get('cambio') as SystemModule;
        return [
          doubleSystem('double-park', 'park', downstream, { dieAfterSend: dying }),
          doubleSystem('double-reconcile', 'reconcile', downstream, {
            dieAfterSend: dying,
            reconcile: (key) => (downstream.count(key) > 0 ? { type: 'found', body: { key } } : { type: 'absent' }),
          }),
          {
            ...cambio,
            async post(request, ctx) {
              const outcome = await cambio.post(request, ctx);
              if (cambioFirstSendDies) {
                cambioFirstSendDies = false;
                return new Promise(() => undefined);
              }
              return outcome;
            },
          },
        ];
      },
    });
  });
  afterAll(async () => {
    await stack?.close();
    await downstream.close();
  });

  /** Starts a submit that sends and then never finishes, and waits until its lease has expired. */
  async function dieMidAttempt(system: string, key: string, sent: () => number) {
    const module = stack.deps.systems(system) as SystemModule;
    const parsed = module.parse({ body: system === 'cambio' ? { status: 'PAID', contactId: key, paymentType: 'CASH' } : { key }, headers: {} });
    void submit(stack.deps, module, parsed, { owner: 'doomed-worker', correlationId: key });
    await eventually(async () => sent() === 1);
    await sleep(LEASE_MS + 100);
    const swept = await stack.sweepNow();
    expect(swept.enqueued).toBeGreaterThanOrEqual(1);
    expect(await stack.queue.idle(10_000)).toBe(true);
    return stack.deps.store.get(recordPk(system, parsed.tenant, parsed.key));
  }

  it('"park" policy: a worker that died after sending leaves the payment unknown, sent once', async () => {
    dying.add('p-1');
    const record = await dieMidAttempt('double-park', 'p-1', () => downstream.count('p-1'));
    expect(record?.status).toBe('unknown');
    expect(record?.history.map((h) => h.event)).toContain('lease_expired');
    expect(downstream.count('p-1')).toBe(1);
  });

  it('"reconcile" policy: the expired lease is reconciled, found, and never sent again', async () => {
    dying.add('r-1');
    const record = await dieMidAttempt('double-reconcile', 'r-1', () => downstream.count('r-1'));
    expect(record?.status).toBe('posted');
    expect(record?.result?.note).toBe('found downstream by reconciliation');
    expect(downstream.count('r-1')).toBe(1);
  });

  it('Cambio\'s "re-send" policy: the expired lease may send again, and ends posted', async () => {
    cambioFirstSendDies = true;
    const record = await dieMidAttempt('cambio', 'c-dies', () => stack.cambio!.stats.applied['c-dies'] ?? 0);
    expect(record?.status).toBe('posted');
    expect(stack.cambio!.stats.applied['c-dies']).toBe(2);
  });

  it('a lost SendMessage is found by the sweep and posted', async () => {
    const send = stack.queue.send.bind(stack.queue);
    let lose = 1;
    stack.queue.send = async (message, delay) => {
      if (lose-- > 0) throw new Error('SendMessage timed out');
      return send(message, delay);
    };
    try {
      stack.cambio!.faults.push('429');
      const r = await call(stack, 'POST', '/v1/cambio/payment-notices', { status: 'PAID', contactId: 'c-lost', paymentType: 'CARD' });
      expect(r.status).toBe(202);
      await sleep(1_600);
      // Nothing woke the worker: the record is still waiting.
      expect((await stack.deps.store.get(recordPk('cambio', 'default', 'c-lost')))?.status).toBe('retrying');
      expect(stack.cambio!.stats.applied['c-lost'] ?? 0).toBe(0);
      expect((await stack.sweepNow()).enqueued).toBeGreaterThanOrEqual(1);
      const rec = await waitForStatus(stack, 'cambio', 'c-lost', ['posted']);
      expect(rec.attempts).toBe(2);
      expect(stack.cambio!.stats.applied['c-lost']).toBe(1);
    } finally {
      stack.queue.send = send;
    }
  });

  it('a rate limiter that fails before sending defers the payment (retrying, not ambiguous), then posts it once', async () => {
    const reserve = stack.deps.limiter.reserve.bind(stack.deps.limiter);
    let failures = 1;
    stack.deps.limiter.reserve = async (...args) => {
      if (failures-- > 0) throw new Error('ProvisionedThroughputExceededException');
      return reserve(...args);
    };
    try {
      const r = await call(stack, 'POST', '/v1/cambio/payment-notices', { status: 'PAID', contactId: 'c-limiter', paymentType: 'CARD' });
      expect(r.status).toBe(202);
      expect(r.body.status).toBe('retrying');
      expect(r.body.history.map((h: { event: string }) => h.event)).toEqual(['received', 'deferred']);
      const rec = await waitForStatus(stack, 'cambio', 'c-limiter', ['posted']);
      expect(rec.attempts).toBe(1);
      expect(stack.cambio!.stats.applied['c-limiter']).toBe(1);
    } finally {
      stack.deps.limiter.reserve = reserve;
    }
  });

  it('a message whose handling crashes goes to the dead-letter list after maxReceiveCount receives', async () => {
    const now = Date.now();
    await stack.deps.store.claim({
      pk: 'ghost#t#g-1', system: 'ghost', tenant: 't', key: 'g-1', status: 'retrying', version: 1, payloadHash: 'x', request: {},
      attempts: 0, failures: 0, checkpoints: {}, history: [], correlationId: 'g', createdAt: new Date(now).toISOString(),
      updatedAt: new Date(now).toISOString(), ttl: 0,
    });
    await stack.queue.send({ pk: 'ghost#t#g-1', reason: 'test' }, 0);
    await eventually(async () => stack.queue.deadLetters.length === 1, 5_000);
    expect(stack.queue.deadLetters[0]).toMatchObject({ receiveCount: 3 });
  });
});
