import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Stack } from '../../shared/local/stack.js';
import { UNKNOWN_ID } from '../../shared/systems/kontantanalys/simulator.js';
import { call, eventually, queuedFirst, statusOf, testStack, waitForStatus } from '../helpers/stack.js';

const template = (hours: number) => ({ principalOrganisationId: 3, serviceTypeId: 3, serviceFormId: 4, openHoursPerWeek: hours, closedWeeksPerYear: 4 });
const service = (principal = 2) => ({ providerId: 1, servicePrincipalId: principal, serviceTypeId: 1, forms: ['Uttagsautomat'], active: true, properties: { lst: true } });

/**
 * Issue 15: one `location` for a Kontantanalys object on every reply about it, and a run summary
 * route that answers before the first scheduled run.
 */
describe('Kontantanalys replies: one location form, run:latest before the first run', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await testStack({ kontantanalys: { ratePerSecond: 1000, seededProviders: 20 }, kontantanalysSyncIntervalMs: false });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('run:latest answers 200 "no run yet" until the scheduled run has run, then its summary', async () => {
    const before = await call(stack, 'GET', '/v1/payments/kontantanalys/run%3Alatest');
    expect(before.status).toBe(200);
    expect(before.body).toMatchObject({ system: 'kontantanalys', key: 'run:latest', status: 'no run yet', history: [], statusUrl: '/v1/payments/kontantanalys/run%3Alatest' });
    expect(before.body.detail).toMatch(/has not run yet.*daily.*KONTANTANALYS_SYNC_SCHEDULE/);
    // Other keys of the system still answer 404 as before.
    expect((await call(stack, 'GET', '/v1/payments/kontantanalys/run%3Aother')).status).toBe(404);
    expect((await call(stack, 'GET', '/v1/payments/kontantanalys/templates%3Anever')).status).toBe(404);

    await stack.kontantanalysSyncNow();
    const after = await call(stack, 'GET', '/v1/payments/kontantanalys/run%3Alatest');
    expect(after.status).toBe(200);
    expect(after.body.status).toBe('posted');
    expect(after.body.result.body).toMatchObject({ created: expect.any(Number), failedKeys: [] });
  });

  it('every PUT reply about an object names it the same way: its own route, percent-encoded once', async () => {
    // `:` and `@` are allowed in an externalId and percent-encoded in the path.
    const id = 'tpl:1@x';
    const path = `/v1/kontantanalys/templates/${encodeURIComponent(id)}`;
    const put = (body: unknown) => call(stack, 'PUT', path, body);

    // A create answers 201 and an update 200 when sent in process; a busy machine may queue either (202).
    // Each is waited for until posted, so the next version is not refused as in flight.
    const created = await put(template(40));
    expect([201, 202], JSON.stringify(created.body)).toContain(created.status);
    const remoteId = (await waitForStatus(stack, 'kontantanalys', `templates:${id}`, ['posted'])).checkpoints.remoteId;
    expect(remoteId).toEqual(expect.any(Number));
    const updated = await put(template(41));
    expect([200, 202], JSON.stringify(updated.body)).toContain(updated.status);
    await waitForStatus(stack, 'kontantanalys', `templates:${id}`, ['posted']);
    const unchanged = await put(template(41));
    expect(unchanged.status).toBe(200);
    expect(unchanged.body.unchanged).toBe(true);
    for (const reply of [created, updated, unchanged]) {
      expect(reply.headers.get('location')).toBe(path);
      expect(reply.body.statusUrl).toBe(path);
    }
    // The location is where the record is: GET it there.
    const got = await call(stack, 'GET', path);
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ key: `templates:${id}`, remoteId, statusUrl: path });

    // Pending (nothing reached the register: 503), the same body again while pending, a new version while pending.
    stack.kontantanalys!.faults.setRates({ '503': 1 });
    try {
      const pending = await put(template(42));
      expect(pending.status).toBe(202);
      const same = await put(template(42));
      expect(same.status).toBe(202);
      expect(same.headers.get('idempotent-replayed')).toBe('true');
      const busy = await put(template(43));
      expect(busy.status).toBe(409);
      expect(busy.body.type).toMatch(/update-in-flight$/);
      for (const reply of [pending, same, busy]) {
        expect(reply.headers.get('location')).toBe(path);
        expect(reply.body.statusUrl).toBe(path);
      }
    } finally {
      stack.kontantanalys!.faults.clear();
    }

    // Refused by the register: the 422 names the object the same way. A busy machine queues the attempt
    // (202, `retrying`: named the same way too) and the worker's send meets the same refusal; the same
    // body again then answers the 422 from the failed record, which is checked in both cases.
    const badPath = '/v1/kontantanalys/services/svc-refused';
    const refused = await call(stack, 'PUT', badPath, service(UNKNOWN_ID));
    if (!queuedFirst(refused)) expect(refused.status).toBe(422);
    await waitForStatus(stack, 'kontantanalys', 'services:svc-refused', ['failed']);
    const refusedAgain = await call(stack, 'PUT', badPath, service(UNKNOWN_ID));
    expect(refusedAgain.status).toBe(422);
    for (const reply of [refused, refusedAgain]) {
      expect(reply.headers.get('location')).toBe(badPath);
      expect(reply.body.statusUrl).toBe(badPath);
    }
    // The status route shows the same address for the record.
    expect((await statusOf(stack, 'kontantanalys', 'services:svc-refused')).statusUrl).toBe(badPath);
  });
});

describe('run:latest tells each caller about its own objects only (issue 20 item 7)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await testStack({ env: { API_KEYS: 'alice=alice-key-0123456789,bob=bob-key-0123456789' }, kontantanalys: { ratePerSecond: 1000, seededProviders: 20 }, kontantanalysSyncIntervalMs: false });
  });
  afterAll(async () => {
    await stack?.close();
  });
  const as = (key: string) => ({ 'x-api-key': key });

  it("a caller reads its own failed keys and counts in the run's summary, never another caller's", async () => {
    const refused = { ...service(UNKNOWN_ID), servicePrincipalId: UNKNOWN_ID };
    const puts = { 'alice-bad': 'alice-key-0123456789', 'bob-bad': 'bob-key-0123456789', 'bob-other-bad': 'bob-key-0123456789' };
    for (const [id, key] of Object.entries(puts)) {
      // 422 when sent at once; a busy machine queues the first attempt (202): then wait for the refusal.
      expect([202, 422]).toContain((await call(stack, 'PUT', `/v1/kontantanalys/services/${id}`, refused, as(key))).status);
      await eventually(async () => (await stack.deps.store.get(`kontantanalys#default#services:${id}`))?.status === 'failed');
    }
    await stack.kontantanalysSyncNow();
    const alice = await call(stack, 'GET', '/v1/payments/kontantanalys/run%3Alatest', undefined, as('alice-key-0123456789'));
    expect(alice.status).toBe(200);
    // On main every caller read every tenant's failed, held and unknown keys here.
    expect(alice.body.result.body).toMatchObject({ failed: 1, failedKeys: ['services:alice-bad'] });
    expect(JSON.stringify(alice.body)).not.toContain('bob');
    const bob = await call(stack, 'GET', '/v1/payments/kontantanalys/run%3Alatest', undefined, as('bob-key-0123456789'));
    expect(bob.body.result.body).toMatchObject({ failed: 2 });
    expect([...bob.body.result.body.failedKeys].sort()).toEqual(['services:bob-bad', 'services:bob-other-bad']);
    expect(JSON.stringify(bob.body)).not.toContain('alice');
  });
});
