import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Stack } from '../../shared/local/stack.js';
import { stockholmDate } from '../../shared/dates.js';
import type { RunSummary } from '../../shared/systems/kontantanalys/sync.js';
import { SEED_EXAMPLE_PROVIDER, UNKNOWN_ID } from '../../shared/systems/kontantanalys/simulator.js';
import { call, eventually, outcomeViews, queuedFirst, statusOf, testStack, waitForStatus } from '../helpers/stack.js';

const template = (hours = 40) => ({ principalOrganisationId: 3, serviceTypeId: 3, serviceFormId: 4, openHoursPerWeek: hours, closedWeeksPerYear: 4 });
const service = (providerId = 1) => ({ providerId, servicePrincipalId: 2, serviceTypeId: 1, forms: ['Uttagsautomat'], active: true, properties: { lst: true } });

describe('Kontantanalys: upsert by externalId, matching, nightly reset, scheduled run', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await testStack({ kontantanalys: { ratePerSecond: 1000, faultWaitSeconds: 1, seededProviders: 17_000 }, kontantanalysSyncIntervalMs: false });
  });
  afterAll(async () => {
    await stack?.close();
  });
  afterEach(() => stack.kontantanalys!.faults.clear());
  const sim = () => stack.kontantanalys!;
  /**
   * A PUT that sends answers 201 (created) or 200 (updated) when its attempt is made in process, and 202
   * when a busy machine queues it: either is accepted, and the record is waited for until posted.
   */
  async function settled(reply: { status: number; body: unknown }, sentInProcess: 200 | 201, key: string) {
    expect([sentInProcess, 202], JSON.stringify(reply.body)).toContain(reply.status);
    return waitForStatus(stack, 'kontantanalys', key, ['posted']);
  }

  it('create, then update, then an unchanged body sends nothing', async () => {
    const before = { creates: sim().stats.creates.template ?? 0, updates: sim().stats.updates, requests: sim().stats.requests };
    const created = await settled(await call(stack, 'PUT', '/v1/kontantanalys/templates/tpl-1', template(40)), 201, 'templates:tpl-1');
    expect(created).toMatchObject({ status: 'posted', checkpoints: { remoteId: expect.any(Number) }, result: { body: { action: 'created' } } });
    const remoteId = created.checkpoints.remoteId as number;
    const updated = await settled(await call(stack, 'PUT', '/v1/kontantanalys/templates/tpl-1', template(45)), 200, 'templates:tpl-1');
    expect(updated.result.body).toEqual({ remoteId, action: 'updated' });
    expect(sim().objects.get('template')?.get(remoteId)?.attributes.openHoursPerWeek).toBe(45);
    const requestsAfterUpdate = sim().stats.requests;
    const same = await call(stack, 'PUT', '/v1/kontantanalys/templates/tpl-1', template(45));
    expect(same.status).toBe(200);
    expect(same.body.unchanged).toBe(true);
    expect(sim().stats.requests).toBe(requestsAfterUpdate);
    expect((sim().stats.creates.template ?? 0) - before.creates).toBe(1);
    expect(sim().stats.updates - before.updates).toBe(1);
    const got = await call(stack, 'GET', '/v1/kontantanalys/templates/tpl-1');
    expect(got.body).toMatchObject({ remoteId, status: 'posted', key: 'templates:tpl-1' });
  });

  it('accepts the API\'s own envelope as well as bare attributes', async () => {
    const r = await settled(await call(stack, 'PUT', '/v1/kontantanalys/templates/tpl-env', { data: { type: 'template', attributes: template(10) } }), 201, 'templates:tpl-env');
    expect(r.result.body.action).toBe('created');
    const bad = await call(stack, 'PUT', '/v1/kontantanalys/templates/tpl-env2', { data: { type: 'template', attributes: { ...template(10), openHoursPerWeek: 200 } } });
    expect(bad.body.errors).toEqual([{ pointer: '#/data/attributes/openHoursPerWeek', detail: 'must be from 0 to 168 hours' }]);
  });

  it('a provider that matches one of the ~17,000 registered is mapped to it, not created again, and says why', async () => {
    const before = sim().stats.creates.provider ?? 0;
    const updatesBefore = sim().stats.updates;
    const ours = { ...SEED_EXAMPLE_PROVIDER, name: 'Ingo Orebro Adolfsbergsvagen', x: SEED_EXAMPLE_PROVIDER.x + 3, y: SEED_EXAMPLE_PROVIDER.y + 4 };
    const r = await call(stack, 'PUT', '/v1/kontantanalys/providers/ingo-orebro', ours);
    // Matched to what was registered: nothing was created, so 200, not 201 Created (issue 22), when matched
    // in process. A busy machine queues the attempt (202, `retrying`) and the worker matches it the same
    // way: each PUT's outcome is checked on its reply when it is the in-process one, and on its record.
    if (!queuedFirst(r)) expect(r.status).toBe(200);
    const matched = await outcomeViews(stack, r, 'kontantanalys', 'providers:ingo-orebro', ['posted']);
    for (const view of matched) {
      expect(view.result.body).toMatchObject({ action: 'matched', match: { by: 'name-and-address', distanceM: 5, remoteName: SEED_EXAMPLE_PROVIDER.name } });
      expect(view.result.note).toContain('not created again');
    }
    const remoteId = matched.at(-1).checkpoints.remoteId;
    if (!queuedFirst(r)) expect(r.body.remoteId).toBe(remoteId);
    const near = await call(stack, 'PUT', '/v1/kontantanalys/providers/near-ombud-7', { name: 'Kiosken', visitingAddress: 'Annan väg 1', postalCode: '111 22', postTown: 'STOCKHOLM', x: 307_010, y: 6_200_000 });
    for (const view of await outcomeViews(stack, near, 'kontantanalys', 'providers:near-ombud-7', ['posted'])) {
      expect(view.result.body).toMatchObject({ action: 'matched', match: { by: 'coordinates', distanceM: 10 } });
    }
    const fresh = await call(stack, 'PUT', '/v1/kontantanalys/providers/new-place', { name: 'Ny plats', visitingAddress: 'Fjällvägen 1', postalCode: '981 31', postTown: 'KIRUNA', x: 900_500, y: 7_600_500 });
    for (const view of await outcomeViews(stack, fresh, 'kontantanalys', 'providers:new-place', ['posted'])) expect(view.result.body.action).toBe('created');
    expect((sim().stats.creates.provider ?? 0) - before).toBe(1);
    // Matching maps; it does not overwrite the registered provider's own data.
    expect(sim().stats.updates).toBe(updatesBefore);
    expect(sim().objects.get('provider')?.get(remoteId)?.attributes.name).toBe(SEED_EXAMPLE_PROVIDER.name);
  });

  it('after the nightly reset, an update that meets 404 re-creates and re-maps', async () => {
    const first = await settled(await call(stack, 'PUT', '/v1/kontantanalys/fee-models/fee-1', { supplierOrganisationId: 1, principalOrganisationId: 2, serviceTypeId: 1, serviceFormId: 3, minFlatFee: 0, minPercentageFee: 0, maxFlatFee: 25, maxPercentageFee: 1.5 }), 201, 'fee-models:fee-1');
    sim().nightlyReset();
    const again = await settled(await call(stack, 'PUT', '/v1/kontantanalys/fee-models/fee-1', { supplierOrganisationId: 1, principalOrganisationId: 2, serviceTypeId: 1, serviceFormId: 3, minFlatFee: 0, minPercentageFee: 0, maxFlatFee: 30, maxPercentageFee: 1.5 }), 200, 'fee-models:fee-1');
    expect(again.result.body.action).toBe('created');
    expect(first.checkpoints.remoteId).toEqual(expect.any(Number));
    expect(again.checkpoints.remoteId).not.toBe(first.checkpoints.remoteId);
    expect(sim().objects.get('feeModel')?.get(again.checkpoints.remoteId)?.attributes.maxFlatFee).toBe(30);
  });

  it('the envelope\'s errors are each kept in the 422', async () => {
    // Whether an id exists only the register knows: the sandbox answers {"errors": [...]} as the API does.
    const r = await call(stack, 'PUT', '/v1/kontantanalys/services/svc-bad', { ...service(UNKNOWN_ID), servicePrincipalId: UNKNOWN_ID });
    const errors = `Huvudman ${UNKNOWN_ID} finns inte; Serviceplats ${UNKNOWN_ID} finns inte`;
    // The 422 problem body is the in-process attempt's reply, checked when the reply is that one; a busy
    // machine queues the attempt (202, `retrying`) and the worker's send meets the same refusal, kept on
    // the record either way.
    if (!queuedFirst(r)) {
      expect(r.status).toBe(422);
      expect(r.body.downstream).toMatchObject({ httpStatus: 400, message: errors });
    }
    expect((await waitForStatus(stack, 'kontantanalys', 'services:svc-bad', ['failed'])).error).toMatchObject({ kind: 'rejected', httpStatus: 400, message: errors });
  });

  it('a new version waits while the previous create is being reconciled or is unknown (409), and a refused body stays refused', async () => {
    sim().faults.push('reset-after');
    const first = await call(stack, 'PUT', '/v1/kontantanalys/templates/tpl-lost', template(30));
    // Reconciling after the in-process attempt. A busy machine queues the attempt (202, `retrying`): its
    // worker's create is lost the same way, and the record is waited for until it is being reconciled
    // (for 5 s, the stack's reconcileDelayMs) before the next version is sent.
    expect(first.status).toBe(202);
    if (!queuedFirst(first)) expect(first.body.status).toBe('reconciling');
    await waitForStatus(stack, 'kontantanalys', 'templates:tpl-lost', ['reconciling']);
    const meanwhile = await call(stack, 'PUT', '/v1/kontantanalys/templates/tpl-lost', template(31));
    expect(meanwhile.status).toBe(409);
    expect(meanwhile.body.detail).toContain('is being reconciled');
    // Templates carry no key to find a lost create by: parked for an operator, never created twice.
    const parked = await waitForStatus(stack, 'kontantanalys', 'templates:tpl-lost', ['unknown']);
    expect(parked.error.message).toContain('check Kontantanalys before resolving');
    const still = await call(stack, 'PUT', '/v1/kontantanalys/templates/tpl-lost', template(32));
    expect(still.status).toBe(409);
    expect(still.body.detail).toContain('paybridge payments resolve');
    const refusedAgain = await call(stack, 'PUT', '/v1/kontantanalys/services/svc-bad', { ...service(UNKNOWN_ID), servicePrincipalId: UNKNOWN_ID });
    expect(refusedAgain.status).toBe(422);
  });

  it('bad paths and bodies are 400s naming the field', async () => {
    expect((await call(stack, 'PUT', '/v1/kontantanalys/atms/x', template())).body.errors).toEqual([{ pointer: 'path:resource', detail: 'must be one of providers, services, templates, adaptations, fee-models' }]);
    const forms = await call(stack, 'PUT', '/v1/kontantanalys/services/svc-forms', { ...service(), forms: ['Paketautomat'] });
    expect(forms.status).toBe(400);
    expect(forms.body.errors[0].pointer).toBe('#/forms/0');
    expect(await statusOf(stack, 'kontantanalys', 'services:svc-forms')).toBeUndefined();
  });

  it('the scheduled run: 401 and 429 mid-run recover without duplicates; timelinessDate follows confirmation; summary readable', async () => {
    // Three services that could not be sent yet (503 to everything: nothing reached the register).
    sim().faults.setRates({ '503': 1 });
    for (const id of ['run-1', 'run-2', 'run-3']) {
      expect((await call(stack, 'PUT', `/v1/kontantanalys/services/${id}`, service())).body.status).toBe('retrying');
    }
    sim().faults.setRates({});
    const createsBefore = sim().stats.creates.service ?? 0;
    // The run meets an expired token, then a rate limit.
    sim().revokeTokens();
    sim().faults.push('429');
    const tokensBefore = sim().stats.tokenRequests;
    const first = (await stack.kontantanalysSyncNow()) as RunSummary;
    // Only what earlier tests in this file left refused or unknown is reported as failed.
    expect([...first.failedKeys].sort()).toEqual(['services:svc-bad', 'templates:tpl-lost']);
    for (const id of ['run-1', 'run-2', 'run-3']) await waitForStatus(stack, 'kontantanalys', `services:${id}`, ['posted']);
    // The revoked token was renewed (once per 401) and the 429 waited out; nothing was created twice.
    expect(sim().stats.tokenRequests).toBeGreaterThan(tokensBefore);
    expect(sim().stats.rateLimited).toBeGreaterThanOrEqual(1);
    expect((sim().stats.creates.service ?? 0) - createsBefore).toBe(3);

    // Whatever the first run found already posted it refreshed; the second does the rest.
    const second = (await stack.kontantanalysSyncNow()) as RunSummary;
    // A refresh paced behind the shared rate limit is still pending when the run ends; the queue finishes it.
    expect(first.refreshed + second.refreshed + second.pending).toBeGreaterThanOrEqual(3);
    const today = stockholmDate(Date.now());
    for (const id of ['run-1', 'run-2', 'run-3']) {
      const rec = await waitForStatus(stack, 'kontantanalys', `services:${id}`, ['posted']);
      await eventually(async () => sim().objects.get('service')?.get(rec.remoteId ?? rec.checkpoints.remoteId)?.attributes.timelinessDate === today);
      expect(sim().objects.get('service')?.get(rec.checkpoints.remoteId)?.attributes).toMatchObject({ timelinessDate: today, properties: { lst: true, externalId: id } });
    }
    const third = (await stack.kontantanalysSyncNow()) as RunSummary;
    expect(third.refreshed).toBe(0);
    expect(third.pending).toBe(0);
    expect((sim().stats.creates.service ?? 0) - createsBefore).toBe(3);

    const summary = await eventually(async () => statusOf(stack, 'kontantanalys', 'run:latest'));
    expect(summary.result.body).toMatchObject({ created: expect.any(Number), updated: expect.any(Number), matched: expect.any(Number), unchanged: expect.any(Number), failed: 2 });
    expect(summary.history.length).toBeGreaterThanOrEqual(3);
  });
});
