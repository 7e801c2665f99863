import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Stack } from '../../shared/local/stack.js';
import { derivedExternalId } from '../../shared/systems/nif/index.js';
import { NIF_SANDBOX_MAGIC } from '../../shared/systems/nif/simulator.js';
import { call, historyEvents, outcomeViews, queuedFirst, statusOf, testStack, waitForStatus } from '../helpers/stack.js';

const YEAR = new Date().getFullYear();
const CLUB = '4568';
const CORPORATE_CLUB = '16235';

/** Seed 003's example (External Membership API), strings as the document sends them. */
const membership = (externalId: string | undefined, change: Record<string, unknown> = {}) => ({
  amount: '450', comment: 'This was paid for club membership', ...(externalId ? { externalId } : {}), isFamilyMember: 'true', isPaid: 'false',
  orgId: '7896', paidDate: '2015-05-08', paidToOrgId: '4568', paymentCategory: 'Club membership', paymentTypeId: 0,
  periodFrom: '2015-05-08', periodTo: '2015-06-08', personId: '8675682', ...change,
});
/** Seed 003's Corporate Sports example. */
const corporate = (externalId: string) => ({
  amount: 777.0, comment: 'test payment', externalId, isFamilyMember: false, isPaid: true, orgId: 16235, paidDate: '2020-12-02',
  paidToOrgId: 16235, paymentCategory: 'test payment Category', paymentTypeId: 0, periodFrom: '2020-07-01', periodTo: '2020-12-31', personId: 9283002,
});
/** Seed 004's example, with this year's dates. */
const gen2 = (externalId: string) => ({ ...membership(externalId), paidDate: `${YEAR}-05-08`, periodFrom: `${YEAR}-05-08`, periodTo: `${YEAR}-06-08` });

const MEMBERSHIP = '/v1/nif/membership/payments';

describe('NIF payments end to end (both generations, sandbox over loopback)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await testStack({ nif: { ratePerSecond: 1000, faultWaitSeconds: 1 }, settings: { reconcileDelayMs: 200 } });
  });
  afterAll(async () => {
    await stack?.close();
  });
  afterEach(() => {
    stack.nif!.faults.clear();
    stack.nif!.options.errorShape = 'code';
  });
  const sent = (ref: string) => stack.nif!.count(ref);

  it('membership: the seed example posts once; its status lives at <ClubId>:<externalId>', async () => {
    const r = await call(stack, 'POST', MEMBERSHIP, membership('m-1'), { ClubId: CLUB });
    // 201 when sent in process; a busy machine queues the first attempt (202): then its outcome is waited for.
    expect([201, 202], JSON.stringify(r.body)).toContain(r.status);
    expect(r.headers.get('location')).toBe('/v1/payments/nif-membership/4568%3Am-1');
    // The person is shown only as a keyed hash (issue 12; test/integration/personal-data.test.ts).
    expect(r.body.request).toMatchObject({ clubId: CLUB, amount: 450, amountOre: 45_000, isPaid: false, personId: expect.stringMatching(/^ref:[0-9a-f]{16}$/) });
    expect((await waitForStatus(stack, 'nif-membership', '4568:m-1', ['posted'])).status).toBe('posted');
    const stored = stack.nif!.payments.find((p) => p.externalReference === 'm-1');
    expect(stored).toMatchObject({ clubId: CLUB, amount: 450, isPaid: false, orgId: 7896 });
    expect((await call(stack, 'POST', MEMBERSHIP, membership('m-1'), { ClubId: CLUB })).status).toBe(200);
    expect(sent('m-1')).toBe(1);
  });

  it('membership: kronor with decimals reach NIF exactly', async () => {
    expect([201, 202]).toContain((await call(stack, 'POST', MEMBERSHIP, membership('m-dec', { amount: '450,50' }), { ClubId: CLUB })).status);
    await waitForStatus(stack, 'nif-membership', '4568:m-dec', ['posted']);
    expect(stack.nif!.payments.find((p) => p.externalReference === 'm-dec')?.amount).toBe(450.5);
  });

  it('corporate: the seed example posts to the corporate club; gen2: the seed example with this year posts', async () => {
    // 201 when sent in process; a machine busy enough to make the first attempt late queues it (202).
    expect([201, 202]).toContain((await call(stack, 'POST', '/v1/nif/corporate/payments', corporate('c-1'), { ClubId: CORPORATE_CLUB })).status);
    await waitForStatus(stack, 'nif-corporate', `${CORPORATE_CLUB}:c-1`, ['posted']);
    expect(stack.nif!.payments.find((p) => p.externalReference === 'c-1')).toMatchObject({ clubId: CORPORATE_CLUB, isPaid: true });
    const r = await call(stack, 'POST', '/v1/nif/payments', gen2('g-1'));
    expect([201, 202]).toContain(r.status);
    await waitForStatus(stack, 'nif', 'g-1', ['posted']);
    expect(stack.nif!.payments.find((p) => p.externalReference === 'g-1')).toMatchObject({ generation: 2 });
  });

  it('a missing or bad ClubId, and a bad body, are 400s naming the field; nothing is sent', async () => {
    const before = stack.nif!.stats.postRequests;
    const none = await call(stack, 'POST', MEMBERSHIP, membership('m-noclub'));
    expect(none.status).toBe(400);
    expect(none.body.errors).toContainEqual({ pointer: 'header:ClubId', detail: 'is required: the club the payment is posted for' });
    expect((await call(stack, 'POST', MEMBERSHIP, membership('m-badclub'), { ClubId: 'abc' })).status).toBe(400);
    const bad = await call(stack, 'POST', MEMBERSHIP, membership('m-bad', { periodTo: '2016-01-01', amount: '-1' }), { ClubId: CLUB });
    expect(bad.body.errors.map((e: { pointer: string }) => e.pointer)).toEqual(['#/amount']);
    const period = await call(stack, 'POST', MEMBERSHIP, membership('m-bad', { periodTo: '2016-01-01' }), { ClubId: CLUB });
    expect(period.body.errors).toEqual([{ pointer: '#/periodTo', detail: 'must be in the same year as periodFrom (NIF 3000)' }]);
    expect(stack.nif!.stats.postRequests).toBe(before);
    expect(await statusOf(stack, 'nif-membership', '4568:m-bad')).toBeUndefined();
  });

  it.each([
    ['1002', { personId: String(NIF_SANDBOX_MAGIC.unknownPersonId) }, 'code'],
    ['3001', { personId: String(NIF_SANDBOX_MAGIC.noMembershipPersonId) }, 'errorCode'],
    ['3008', { orgId: String(NIF_SANDBOX_MAGIC.invalidOrgId) }, 'errors'],
    ['1006', { orgId: String(NIF_SANDBOX_MAGIC.invalidBranchId), paymentTypeId: 2 }, 'text'],
  ] as const)('NIF code %s (error body shape "%s") is a 422 carrying the code', async (code, change, shape) => {
    stack.nif!.options.errorShape = shape;
    const r = await call(stack, 'POST', MEMBERSHIP, membership(`m-${code}`, change), { ClubId: CLUB });
    // The 422 problem body is the in-process attempt's reply, checked when the reply is that one; a busy
    // machine queues the attempt (202, `retrying`) and the worker's send meets the same refusal, which the
    // record carries. Waited for here, so the error shape is still this case's when the worker sends.
    if (!queuedFirst(r)) {
      expect(r.status).toBe(422);
      expect(r.body.downstream).toMatchObject({ code, httpStatus: 400 });
    }
    expect((await waitForStatus(stack, 'nif-membership', `4568:m-${code}`, ['failed'])).error).toMatchObject({ kind: 'rejected', code, httpStatus: 400 });
  });

  it('100 concurrent deliveries of one payment post once', async () => {
    const replies = await Promise.all(Array.from({ length: 100 }, () => call(stack, 'POST', MEMBERSHIP, membership('m-burst'), { ClubId: CLUB })));
    expect(replies.every((r) => [200, 201, 202].includes(r.status))).toBe(true);
    await waitForStatus(stack, 'nif-membership', '4568:m-burst', ['posted']);
    expect(sent('m-burst')).toBe(1);
  });

  it('reconciliation: a 500 after NIF stored the payment is found through the read API, not posted again', async () => {
    stack.nif!.faults.push('500');
    const reads = stack.nif!.stats.readRequests;
    const r = await call(stack, 'POST', MEMBERSHIP, membership('m-recon'), { ClubId: CLUB });
    expect(r.status).toBe(202);
    // Reconciling after the in-process attempt's 500; when a busy machine queued the attempt (`retrying`),
    // the worker's send meets the 500 and reconciles it the same way: the history and the note tell it.
    if (!queuedFirst(r)) expect(r.body.status).toBe('reconciling');
    const rec = await waitForStatus(stack, 'nif-membership', '4568:m-recon', ['posted']);
    expect(historyEvents(rec)).toEqual(['received', 'ambiguous', 'posted']);
    expect(rec.result.note).toBe('found downstream by reconciliation');
    expect(stack.nif!.stats.readRequests).toBeGreaterThan(reads);
    expect(sent('m-recon')).toBe(1);
  });

  it('reconciliation: a reset before NIF stored anything is not found, and is posted again once', async () => {
    stack.nif!.faults.push('reset-before');
    const r = await call(stack, 'POST', MEMBERSHIP, membership('m-lost'), { ClubId: CLUB });
    // Reconciling after the in-process attempt; queued on a busy machine (`retrying`), the worker's send
    // is lost the same way: the history below tells the reconciliation either way.
    expect(r.status).toBe(202);
    if (!queuedFirst(r)) expect(r.body.status).toBe('reconciling');
    const rec = await waitForStatus(stack, 'nif-membership', '4568:m-lost', ['posted']);
    expect(historyEvents(rec)).toEqual(['received', 'ambiguous', 'reconciled', 'posted']);
    expect(sent('m-lost')).toBe(1);
  });

  it('without an externalId: the Idempotency-Key header, else the natural key, with a derived ExternalId NIF can be asked about', async () => {
    // Each posted in process (201) or queued on a busy machine (202), and waited for until posted.
    const a = await call(stack, 'POST', MEMBERSHIP, membership(undefined, { personId: '111' }), { ClubId: CLUB, 'Idempotency-Key': 'pos-77' });
    expect([201, 202], JSON.stringify(a.body)).toContain(a.status);
    expect(a.body.key).toBe('4568:idem:pos-77');
    await waitForStatus(stack, 'nif-membership', a.body.key, ['posted']);
    expect(sent(derivedExternalId(CLUB, 'idem:pos-77'))).toBe(1);
    const b = await call(stack, 'POST', MEMBERSHIP, membership(undefined, { personId: '222' }), { ClubId: CLUB });
    expect([201, 202], JSON.stringify(b.body)).toContain(b.status);
    expect(b.body.key).toBe('4568:natural:222:7896:0:2015-05-08:2015-06-08');
    await waitForStatus(stack, 'nif-membership', b.body.key, ['posted']);
    expect((await call(stack, 'POST', MEMBERSHIP, membership(undefined, { personId: '222' }), { ClubId: CLUB })).status).toBe(200);
    expect(sent(derivedExternalId(CLUB, 'natural:222:7896:0:2015-05-08:2015-06-08'))).toBe(1);
  });

  it('a club token NIF refuses (401) holds the payment, naming the club and what to do', async () => {
    const original = stack.nif!.options.clubTokens[CLUB] as string;
    stack.nif!.options.clubTokens[CLUB] = 'renewed-in-portal';
    try {
      const r = await call(stack, 'POST', MEMBERSHIP, membership('m-401'), { ClubId: CLUB });
      expect(r.status).toBe(202);
      // Held by the in-process attempt (reply and record), or by the worker's when a busy machine queued
      // it (`retrying`: the record); waited for before the token is put back.
      for (const view of await outcomeViews(stack, r, 'nif-membership', '4568:m-401', ['held'])) {
        expect(view.status).toBe('held');
        expect(view.error.message).toContain('ClubId 4568');
        expect(view.error.message).toContain('NIF_CLUB_TOKENS');
      }
      expect(sent('m-401')).toBe(0);
    } finally {
      stack.nif!.options.clubTokens[CLUB] = original;
    }
    const unknownClub = await call(stack, 'POST', MEMBERSHIP, membership('m-noclubtoken'), { ClubId: '7777' });
    expect(unknownClub.status).toBe(202);
    for (const view of await outcomeViews(stack, unknownClub, 'nif-membership', '7777:m-noclubtoken', ['held'])) {
      expect(view).toMatchObject({ status: 'held', error: { kind: 'auth' } });
    }
  });

  it('gen2: an ambiguous outcome is parked as unknown and never re-posted', async () => {
    stack.nif!.faults.push('500');
    const r = await call(stack, 'POST', '/v1/nif/payments', gen2('g-500'));
    expect(r.status).toBe(202);
    // Parked at once when sent in process; when a busy machine queued it, the worker's send meets the 500.
    await waitForStatus(stack, 'nif', 'g-500', ['unknown']);
    expect(sent('g-500')).toBe(1);
    expect(await stack.queue.depth('nif')).toBe(0);
  });
});
