import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Stack } from '../../shared/local/stack.js';
import { call, historyEvents, queuedFirst, testStack, waitForStatus } from '../helpers/stack.js';

const MEMBERSHIP = '/v1/nif/membership/payments';
/** Seed 003's example, for a club that is paid itself. */
const payment = (club: string, externalId: string) => ({
  amount: '450', externalId, isPaid: 'true', orgId: club, paidDate: '2015-05-08', paidToOrgId: club, paymentCategory: 'Club membership',
  paymentTypeId: 0, periodFrom: '2015-05-08', periodTo: '2015-06-08', personId: '8675682',
});

describe('NIF first generation: reconciliation matches the club as well as the externalReference', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await testStack({ nif: { ratePerSecond: 1000, clubTokens: { '4568': 'token-4568', '5555': 'token-5555' } }, settings: { reconcileDelayMs: 200 } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('another club\'s payment for the same person with the same ExternalId is not taken for ours', async () => {
    // Club 4568's payment first, posted in process (201) or queued on a busy machine (202): its row must be in NIF.
    expect([201, 202]).toContain((await call(stack, 'POST', MEMBERSHIP, payment('4568', 'inv-3248'), { ClubId: '4568' })).status);
    await waitForStatus(stack, 'nif-membership', '4568:inv-3248', ['posted']);
    // Club 5555's post is lost before NIF stores it; the read API (by person) shows club 4568's row.
    stack.nif!.faults.push('reset-before');
    const r = await call(stack, 'POST', MEMBERSHIP, payment('5555', 'inv-3248'), { ClubId: '5555' });
    // Reconciling after the in-process attempt; when a busy machine queued it (202, `retrying`) the
    // worker's send is lost the same way: the history below tells the reconciliation either way.
    expect(r.status).toBe(202);
    if (!queuedFirst(r)) expect(r.body.status).toBe('reconciling');
    const rec = await waitForStatus(stack, 'nif-membership', '5555:inv-3248', ['posted']);
    expect(historyEvents(rec)).toEqual(['received', 'ambiguous', 'reconciled', 'posted']);
    const rows = stack.nif!.payments.filter((p) => p.externalReference === 'inv-3248');
    expect(rows.map((p) => p.clubId).sort()).toEqual(['4568', '5555']);
  });

  it('its own club\'s row is found, and not posted again', async () => {
    stack.nif!.faults.push('500');
    const r = await call(stack, 'POST', MEMBERSHIP, payment('5555', 'inv-own'), { ClubId: '5555' });
    // Reconciling after the in-process attempt's 500, or, queued on a busy machine (202, `retrying`),
    // after the worker's: the history (ambiguous, then posted) and the note tell it either way.
    expect(r.status).toBe(202);
    if (!queuedFirst(r)) expect(r.body.status).toBe('reconciling');
    const rec = await waitForStatus(stack, 'nif-membership', '5555:inv-own', ['posted']);
    expect(historyEvents(rec)).toEqual(['received', 'ambiguous', 'posted']);
    expect(rec.result.note).toBe('found downstream by reconciliation');
    expect(rec.result.body).toMatchObject({ clubId: '5555', orgId: 5555, paidToOrgId: 5555, externalReference: 'inv-own' });
    expect(stack.nif!.count('inv-own')).toBe(1);
  });
});
