import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { osloDate } from '../../shared/dates.js';
import { recordPk } from '../../shared/core/types.js';
import type { Stack } from '../../shared/local/stack.js';
import { call, DEV_API_KEY, testStack } from '../helpers/stack.js';

/**
 * Issue 20, item 5: callers are tied to what they may post to. A caller's scope (CALLER_SCOPES) names
 * its systems, its NIF ClubIds and its Kontantanalys keys; anything outside it is refused with a 403
 * before anything is recorded or sent, and read as if it did not exist. A caller without a scope may
 * use everything, as before.
 */
const ALICE = { 'x-api-key': 'key-of-alice' };
const BOB = { 'x-api-key': 'key-of-bob' };
const OPEN = { 'x-api-key': DEV_API_KEY };
const TERMINAL_SECRET = `whsec_${Buffer.from('terminal-secret-of-caller-bob!!').toString('base64')}`;
const SCOPES = {
  alice: { systems: ['nif-membership', 'kontantanalys', 'cambio'], nifClubs: ['4568'], kontantanalysKeys: ['alice-*', 'shared-atm'] },
  bob: { systems: ['nif-membership', 'nif-corporate'], nifClubs: ['16235'] },
};
const YEAR = osloDate(Date.now()).slice(0, 4);
const nifBody = (externalId: string, personId = '8675682') => ({
  amount: '450', externalId, isPaid: 'false', orgId: '7896', paidDate: `${YEAR}-05-08`, paidToOrgId: '4568',
  paymentCategory: 'Club membership', paymentTypeId: 0, periodFrom: `${YEAR}-05-08`, periodTo: `${YEAR}-06-08`, personId,
});
const service = { providerId: 1, servicePrincipalId: 2, serviceTypeId: 1, forms: ['Uttagsautomat'], active: true, properties: { lst: true } };

describe('caller scopes (issue 20, item 5)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await testStack({
      env: { API_KEYS: `${DEV_API_KEY},alice=key-of-alice,bob=key-of-bob`, WEBHOOK_SECRET: `bob=${TERMINAL_SECRET}`, CALLER_SCOPES: JSON.stringify(SCOPES) },
      cambio: { ratePerSecond: 1000 },
      nif: { ratePerSecond: 1000 },
      kontantanalys: { ratePerSecond: 1000, seededProviders: 5 },
      kontantanalysSyncIntervalMs: false,
    });
  });
  afterAll(async () => {
    await stack?.close();
  });

  const nifCalls = () => stack.nif!.stats.postRequests + stack.nif!.stats.readRequests;

  it("a ClubId outside the caller's scope: 403 before anything is recorded or sent, even for a key nobody holds", async () => {
    const before = nifCalls();
    const r = await call(stack, 'POST', '/v1/nif/membership/payments', nifBody('sc-club-1'), { ...BOB, ClubId: '4568' });
    expect(r.status).toBe(403);
    expect(r.headers.get('content-type')).toBe('application/problem+json');
    expect(r.body.type).toMatch(/out-of-scope$/);
    expect(r.body.errors).toEqual([{ pointer: 'header:ClubId', detail: expect.stringMatching(/not one this caller may post to/) }]);
    expect(nifCalls()).toBe(before);
    expect(await stack.deps.store.get(recordPk('nif-membership', '4568', '4568:sc-club-1'))).toBeUndefined();
  });

  it('cannot claim keys in another club first: the club owner posts its payment afterwards as usual', async () => {
    // Without scopes bob could take 4568's natural key (it holds the personId) and alice's payment got 409.
    const { externalId: _e, ...keyless } = nifBody('x', '1234567');
    expect((await call(stack, 'POST', '/v1/nif/membership/payments', keyless, { ...BOB, ClubId: '4568' })).status).toBe(403);
    const mine = await call(stack, 'POST', '/v1/nif/membership/payments', keyless, { ...ALICE, ClubId: '4568' });
    expect([201, 202]).toContain(mine.status);
  });

  it("a system outside the caller's scope: 403, nothing recorded or sent", async () => {
    const before = stack.cambio!.stats.noticeRequests;
    const r = await call(stack, 'POST', '/v1/cambio/payment-notices', { status: 'PAID', contactId: 'sc-cambio-1', paymentType: 'CARD' }, BOB);
    expect(r.status).toBe(403);
    expect(r.body.type).toMatch(/out-of-scope$/);
    expect(stack.cambio!.stats.noticeRequests).toBe(before);
    expect(await stack.deps.store.get(recordPk('cambio', 'default', 'sc-cambio-1'))).toBeUndefined();
    expect((await call(stack, 'POST', '/v1/nif/payments', nifBody('sc-gen2-1'), ALICE)).status).toBe(403);
  });

  it('inside the scope everything works as before', async () => {
    const r = await call(stack, 'POST', '/v1/nif/membership/payments', nifBody('sc-club-2'), { ...BOB, ClubId: '16235' });
    expect([201, 202]).toContain(r.status);
    expect((await call(stack, 'GET', '/v1/payments/nif-membership/16235%3Asc-club-2', undefined, BOB)).status).toBe(200);
    expect([201, 202]).toContain((await call(stack, 'PUT', '/v1/kontantanalys/services/alice-atm-1', service, ALICE)).status);
    expect([201, 202]).toContain((await call(stack, 'PUT', '/v1/kontantanalys/services/shared-atm', service, ALICE)).status);
  });

  it("a Kontantanalys key outside the caller's scope: 403 on PUT, 404 on GET as one never received", async () => {
    const requests = stack.kontantanalys!.stats.requests;
    const put = await call(stack, 'PUT', '/v1/kontantanalys/services/bob-atm-1', service, ALICE);
    expect(put.status).toBe(403);
    expect(put.body.errors).toEqual([{ pointer: 'path:externalId', detail: expect.stringMatching(/not one this caller may post to/) }]);
    expect(stack.kontantanalys!.stats.requests).toBe(requests);
    expect(await stack.deps.store.get(recordPk('kontantanalys', 'default', 'services:bob-atm-1'))).toBeUndefined();
    // One the open caller made is there, but not for alice: the same 404 as a key never received.
    expect([201, 202]).toContain((await call(stack, 'PUT', '/v1/kontantanalys/services/open-atm-1', service, OPEN)).status);
    const outside = await call(stack, 'GET', '/v1/kontantanalys/services/open-atm-1', undefined, ALICE);
    const never = await call(stack, 'GET', '/v1/kontantanalys/services/open-atm-2', undefined, ALICE);
    expect(outside.status).toBe(404);
    expect(outside.body.detail.replace('open-atm-1', 'K')).toBe(never.body.detail.replace('open-atm-2', 'K'));
  });

  it('the status route answers a record outside the scope as one never received, even one visible to every caller', async () => {
    // A record from before callers were stored is visible to every caller, but not outside a scope.
    expect([201, 202]).toContain((await call(stack, 'POST', '/v1/cambio/payment-notices', { status: 'PAID', contactId: 'sc-template', paymentType: 'CARD' }, OPEN)).status);
    const template = (await stack.deps.store.get(recordPk('cambio', 'default', 'sc-template')))!;
    const { caller: _c, ...old } = { ...template, pk: recordPk('cambio', 'default', 'sc-old'), key: 'sc-old' };
    expect((await stack.deps.store.claim(old)).claimed).toBe(true);
    expect((await call(stack, 'GET', '/v1/payments/cambio/sc-old', undefined, ALICE)).status).toBe(200);
    const outside = await call(stack, 'GET', '/v1/payments/cambio/sc-old', undefined, BOB);
    const never = await call(stack, 'GET', '/v1/payments/cambio/sc-never', undefined, BOB);
    expect(outside.status).toBe(404);
    expect(outside.body.detail.replace('sc-old', 'K')).toBe(never.body.detail.replace('sc-never', 'K'));
  });

  it('a caller without a scope may use everything, as before', async () => {
    expect([201, 202]).toContain((await call(stack, 'POST', '/v1/nif/membership/payments', nifBody('sc-open-1'), { ...OPEN, ClubId: '4568' })).status);
    expect([201, 202]).toContain((await call(stack, 'POST', '/v1/nif/membership/payments', nifBody('sc-open-2'), { ...OPEN, ClubId: '16235' })).status);
    expect([201, 202]).toContain((await call(stack, 'POST', '/v1/cambio/payment-notices', { status: 'PAID', contactId: 'sc-open-3', paymentType: 'CARD' }, OPEN)).status);
  });

  it('a webhook sender has the scope of its name; a refused delivery is not remembered: the same delivery again is handled afresh, not replayed', async () => {
    const body = JSON.stringify(nifBody('sc-hook-1'));
    const at = new Date();
    const signed = { 'webhook-id': 'msg_scope_1', 'webhook-timestamp': String(Math.floor(at.getTime() / 1000)), 'webhook-signature': new Webhook(TERMINAL_SECRET).sign('msg_scope_1', at, body) };
    const send = () => fetch(`${stack.url}/v1/nif/membership/payments`, { method: 'POST', headers: { 'content-type': 'application/json', ClubId: '4568', ...signed }, body, signal: AbortSignal.timeout(10_000) });
    const first = await send();
    expect(first.status).toBe(403);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    const again = await send();
    expect(again.status).toBe(403);
    expect(again.headers.get('idempotent-replayed')).toBeNull();
  });
});
