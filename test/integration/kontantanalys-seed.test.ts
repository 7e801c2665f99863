import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stockholmDate } from '../../shared/dates.js';
import type { Stack } from '../../shared/local/stack.js';
import { DEFAULT_PAGE_SIZE } from '../../shared/systems/kontantanalys/simulator.js';
import { call, queuedFirst, testStack, waitForStatus } from '../helpers/stack.js';

const REGISTERED = 17_000;
const service = { providerId: 1, servicePrincipalId: 2, serviceTypeId: 1, forms: ['Uttagsautomat'], active: true, properties: { lst: true } };

describe('Kontantanalys as seed 001 describes it: every page, externalId in properties, the envelope, timelinessDate', () => {
  let stack: Stack;
  /** Moves paybridge's clock and the sandbox's "today" together (the last test jumps to 1 January). */
  let offsetMs = 0;
  const now = () => Date.now() + offsetMs;
  beforeAll(async () => {
    stack = await testStack({
      clock: now,
      kontantanalys: { ratePerSecond: 1000, faultWaitSeconds: 1, seededProviders: REGISTERED, today: () => stockholmDate(now()) },
      kontantanalysSyncIntervalMs: false,
      settings: { reconcileDelayMs: 200 },
    });
  });
  afterAll(async () => {
    await stack?.close();
  });
  const sim = () => stack.kontantanalys!;

  it('matching reads every page of the ~17,000 providers, and a rate limit on page 5 resumes there', async () => {
    const pages = Math.ceil(REGISTERED / DEFAULT_PAGE_SIZE);
    expect(pages).toBeGreaterThan(5);
    // The last seeded provider ("Ombud 16999") sits on the last page; ours is 10 m from it.
    const last = sim().objects.get('provider')?.get(REGISTERED)?.attributes as { x: number; y: number };
    expect(last).toMatchObject({ x: expect.any(Number), y: expect.any(Number) });
    const before = sim().stats.requests;
    sim().faults.push('none', 'none', 'none', 'none', '429');
    const first = await call(stack, 'PUT', '/v1/kontantanalys/providers/last-page', { name: 'Kiosken vid slutet', visitingAddress: 'Slutvägen 1', postalCode: '111 22', postTown: 'STOCKHOLM', x: last.x + 6, y: last.y + 8 });
    expect(first.status).toBe(202);
    const rec = await waitForStatus(stack, 'kontantanalys', 'providers:last-page', ['posted']);
    expect(rec.result.body).toMatchObject({ action: 'matched', remoteId: REGISTERED, match: { by: 'coordinates', distanceM: 10 } });
    // Pages 1–4, page 5 refused, then pages 5–N once each: resumed, not read again from page 1.
    expect(sim().stats.requests - before).toBe(pages + 1);
    expect(sim().stats.creates.provider ?? 0).toBe(0);
  });

  it('a service is sent with its externalId in properties, and a lost create is found there instead of created twice', async () => {
    const before = sim().stats.creates.service ?? 0;
    sim().faults.push('reset-after');
    const r = await call(stack, 'PUT', '/v1/kontantanalys/services/svc-lost', service);
    // Reconciling after the in-process attempt; queued on a busy machine (202, `retrying`), the worker's
    // create is lost the same way: found by reconciliation either way (the note below).
    expect(r.status).toBe(202);
    if (!queuedFirst(r)) expect(r.body.status).toBe('reconciling');
    const rec = await waitForStatus(stack, 'kontantanalys', 'services:svc-lost', ['posted']);
    expect(rec.result.note).toBe('found downstream by reconciliation');
    expect((sim().stats.creates.service ?? 0) - before).toBe(1);
    const stored = sim().objects.get('service')?.get(rec.checkpoints.remoteId)?.attributes;
    expect(stored).toMatchObject({ properties: { lst: true, externalId: 'svc-lost' } });
    expect(stored).not.toHaveProperty('externalId');
  });

  it('the envelope: the resource\'s type only, no unknown members, a 10,000-deep body refused quickly; nothing sent', async () => {
    const before = sim().stats.requests;
    const wrongType = await call(stack, 'PUT', '/v1/kontantanalys/services/svc-env', { data: { type: 'provider', attributes: service } });
    expect(wrongType.status).toBe(400);
    expect(wrongType.body.errors).toEqual([{ pointer: '#/data/type', detail: expect.stringContaining('must be "service"') }]);
    const deep = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
    const started = Date.now();
    const nested = await call(stack, 'PUT', '/v1/kontantanalys/services/svc-env', `{"data":{"type":"service","attributes":${JSON.stringify(service)},"extra":${deep}},"meta":${deep}}`);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(nested.status).toBe(400);
    expect(nested.body.errors.map((e: { pointer: string }) => e.pointer).sort()).toEqual(['#/data/extra', '#/meta']);
    expect((await call(stack, 'PUT', '/v1/kontantanalys/services/svc-env', { ...service, externalId: 'svc-env' })).body.errors[0].detail).toContain('Kontantanalys keeps it in properties');
    expect(sim().stats.requests).toBe(before);
  });

  it('a scheduled run on 1 January sends 1 January for a confirmation of 30 December, never last year\'s date', async () => {
    const year = Number(stockholmDate(Date.now()).slice(0, 4)) + 1;
    offsetMs = Date.parse(`${year - 1}-12-30T12:00:00+01:00`) - Date.now();
    const put = await call(stack, 'PUT', '/v1/kontantanalys/services/svc-newyear', service);
    // Created in process (201), or queued on a busy machine (202): either way posted on 30 December, before the clock moves on.
    expect([201, 202], JSON.stringify(put.body)).toContain(put.status);
    await waitForStatus(stack, 'kontantanalys', 'services:svc-newyear', ['posted']);
    offsetMs = Date.parse(`${year}-01-01T07:00:00+01:00`) - Date.now();
    await stack.kontantanalysSyncNow();
    const rec = await waitForStatus(stack, 'kontantanalys', 'services:svc-newyear', ['posted', 'failed']);
    expect(rec.status).toBe('posted');
    expect(rec.checkpoints.timelinessDate).toBe(`${year}-01-01`);
    expect(sim().objects.get('service')?.get(rec.checkpoints.remoteId)?.attributes.timelinessDate).toBe(`${year}-01-01`);
  });
});
