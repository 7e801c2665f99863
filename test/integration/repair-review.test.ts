import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redrive, resolvePosted } from '../../shared/core/operator.js';
import { recordPk, type PaymentRecord } from '../../shared/core/types.js';
import type { Stack } from '../../shared/local/stack.js';
import { settle } from '../../shared/core/attempt.js';
import { encodeRetryMessage, retryMessage } from '../../shared/queue/port.js';
import { handleBatch } from '../../shared/core/worker.js';
import type { SystemModule } from '../../shared/systems/types.js';
import { CountingDownstream, doubleSystem } from '../helpers/doubles.js';
import { call, eventually, testStack } from '../helpers/stack.js';

/**
 * The adversarial review of issue 19's engine change (a41fe93): paths that could send a payment twice or
 * lose one, each reproduced on a41fe93 before its fix.
 */

const service = (active: boolean) => ({ providerId: 1, servicePrincipalId: 2, serviceTypeId: 1, forms: ['Uttagsautomat'], active, properties: { lst: true } });

describe('repair review: Kontantanalys upserts respect what the register may hold', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await testStack({ kontantanalys: { ratePerSecond: 1000, faultWaitSeconds: 1 }, kontantanalysSyncIntervalMs: false });
  });
  afterAll(async () => {
    await stack?.close();
  });
  const sim = () => stack.kontantanalys!;
  const pk = (id: string) => recordPk('kontantanalys', 'default', `services:${id}`);
  const posted = (id: string) =>
    eventually(async () => {
      const r = await stack.deps.store.get(pk(id));
      return r && r.status === 'posted' ? r : undefined;
    }, 20_000);

  /**
   * The state a create whose reply was lost leaves once its reconcile was held (a configuration error or
   * refused credentials while reading back, then a spent budget): the object exists in the register, the
   * record holds no id for it, `createRequested` and the unconfirmed mark say it may.
   */
  async function heldAfterLostCreate(id: string): Promise<{ record: PaymentRecord; remoteId: number }> {
    const first = await call(stack, 'PUT', `/v1/kontantanalys/services/${id}`, service(true));
    expect([201, 202]).toContain(first.status);
    const done = await posted(id);
    const remoteId = done.checkpoints.remoteId as number;
    const now = Date.now();
    const { remoteId: _r, ...checkpoints } = done.checkpoints;
    const { result: _res, ...rest } = done;
    const held: PaymentRecord = {
      ...rest,
      status: 'held',
      nextAttemptAt: now,
      checkpoints: { ...checkpoints, createRequested: true, createAnsweredAt: now - 2_000 },
      unconfirmed: { since: now - 2_000, at: now - 2_000, revision: 1 },
      error: { kind: 'config', message: 'KONTANTANALYS_PASSWORD is missing' },
      updatedAt: new Date(now).toISOString(),
    };
    expect(await stack.deps.store.replace(held, done.version)).toBe(true);
    return { record: { ...held, version: done.version + 1 }, remoteId };
  }

  it('a changed body for a held record whose create may have landed is refused until it is reconciled (a41fe93 recorded it posted without sending it)', async () => {
    const servicesBefore = sim().objects.get('service')?.size ?? 0;
    const { remoteId } = await heldAfterLostCreate('svc-review-held');
    const updatesBefore = sim().stats.updates;
    const changed = await call(stack, 'PUT', '/v1/kontantanalys/services/svc-review-held', service(false));
    // On a41fe93 the upsert sent it: the module found the earlier create and recorded the new version as
    // posted, and the register kept the old one (active: true) under a record that says active: false.
    const after = await eventually(async () => {
      const r = await stack.deps.store.get(pk('svc-review-held'));
      return r && !['retrying', 'reconciling'].includes(r.status) ? r : undefined;
    }, 20_000);
    if (after.status === 'posted' && (after.request.attributes as { active?: boolean }).active === false) {
      expect(sim().objects.get('service')?.get(remoteId)?.attributes.active).toBe(false);
    }
    expect(changed.status).toBe(409);
    expect(changed.body.type).toMatch(/update-in-flight/);
    expect(changed.body.detail).toMatch(/redrive/);
    expect(after.status).toBe('held');
    expect(sim().stats.updates).toBe(updatesBefore);
    // The way on: a redrive reads the register back (found: posted, the object's id kept), then the
    // changed body is sent as an update of that object.
    const redriven = await redrive({ store: stack.deps.store, queue: stack.queue, clock: Date.now, fence: () => stack.deps.pacer.mintFence() }, pk('svc-review-held'), 'ops');
    expect(redriven.ok).toBe(true);
    const found = await posted('svc-review-held');
    expect(found.checkpoints.remoteId).toBe(remoteId);
    const again = await call(stack, 'PUT', '/v1/kontantanalys/services/svc-review-held', service(false));
    expect([200, 202]).toContain(again.status);
    await eventually(async () => sim().objects.get('service')?.get(remoteId)?.attributes.active === false, 20_000);
    expect(sim().objects.get('service')?.size).toBe(servicesBefore + 1);
  }, 90_000);

  it('a changed body after an operator resolved a lost create as posted is sent to the object found (a41fe93 recorded it posted, the register kept the old body)', async () => {
    const servicesBefore = sim().objects.get('service')?.size ?? 0;
    const { record, remoteId } = await heldAfterLostCreate('svc-review-resolved');
    const unknown: PaymentRecord = { ...record, status: 'unknown', error: { kind: 'ambiguous', message: 'a create whose answer never came' } };
    expect(await stack.deps.store.replace(unknown, record.version)).toBe(true);
    const operator = { store: stack.deps.store, queue: stack.queue, clock: Date.now, fence: () => stack.deps.pacer.mintFence() };
    expect((await resolvePosted(operator, pk('svc-review-resolved'), 'ops', 'found in the register')).ok).toBe(true);
    // The operator's word leaves the object's id unknown: the next send looks the create up first.
    const changed = await call(stack, 'PUT', '/v1/kontantanalys/services/svc-review-resolved', service(false));
    expect([200, 202]).toContain(changed.status);
    const after = await eventually(async () => {
      const r = await stack.deps.store.get(pk('svc-review-resolved'));
      return r && r.status === 'posted' && (r.request.attributes as { active?: boolean }).active === false ? r : undefined;
    }, 20_000);
    expect(after.checkpoints.remoteId).toBe(remoteId);
    expect(sim().objects.get('service')?.get(remoteId)?.attributes.active).toBe(false);
    expect(sim().objects.get('service')?.size).toBe(servicesBefore + 1);
  }, 90_000);
});

describe('repair review: a late success parks the record, and its queued message sends nothing', () => {
  let stack: Stack;
  const downstream = new CountingDownstream();
  const SYSTEM = 'double-late';
  beforeAll(async () => {
    await downstream.start();
    stack = await testStack({ modules: () => [doubleSystem(SYSTEM, 'reconcile', downstream)] });
  });
  afterAll(async () => {
    await stack?.close();
    await downstream.close();
  });

  it('revision 1 posted late while revision 2 waits on the queue: the record is unknown and revision 2 is not sent (a41fe93 sent it from the message)', async () => {
    const module = stack.deps.systems(SYSTEM) as SystemModule;
    const key = 'late-rev';
    const now = Date.now();
    const stamp = new Date(now).toISOString();
    // Revision 2 (an operator's repost after revision 1 was resolved not posted), queued under a fence
    // whose message is on its way: the record as written, and that message.
    const rev2: PaymentRecord = {
      pk: recordPk(SYSTEM, 't', key), system: SYSTEM, tenant: 't', key, status: 'retrying', version: 1, revision: 2,
      payloadHash: 'h', request: { key }, attempts: 0, failures: 0, budgetFrom: now, checkpoints: {}, history: [],
      correlationId: 'c', createdAt: stamp, updatedAt: stamp, ttl: Math.floor(now / 1000) + 86_400,
      fence: stack.deps.pacer.mintFence(), nextAttemptAt: now,
      revisions: [{ revision: 1, status: 'failed', payloadHash: 'h', attempts: 1, endedAt: stamp, reason: 'resolved not posted' }],
    };
    expect((await stack.deps.store.claim(rev2)).claimed).toBe(true);
    const message = encodeRetryMessage(retryMessage(rev2, 'repost'), stack.deps.messageKeys);
    // Revision 1's attempt, which outlived its deadline, comes back with a success: settle finds the
    // record moved on, and the transition function parks it (neither may be sent again until an operator looks).
    const rev1: PaymentRecord = { ...rev2, revision: 1, version: 0, leaseOwner: 'frozen', leaseUntil: now - 60_000, sending: true, revisions: [] };
    const { fence: _f, ...rev1Lease } = rev1;
    const late = await settle(stack.deps, module, rev1Lease, { ...rev1Lease, status: 'posted', attempts: 1, result: { httpStatus: 200, body: {} } }, stack.deps.log);
    expect(late.status).toBe('unknown');
    // Revision 2's message arrives: nothing may be sent.
    const batch = await handleBatch(stack.deps, SYSTEM, [{ id: 'm1', body: message }], Date.now() + 60_000);
    // Its fence was spent by the write that parked the record: the message is a duplicate, dropped.
    expect(batch.counts).toEqual({ duplicate: 1 });
    expect(downstream.count(key)).toBe(0);
    expect((await stack.deps.store.get(rev2.pk))?.status).toBe('unknown');
  });
});
