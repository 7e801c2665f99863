import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { osloDate } from '../../shared/dates.js';
import type { Stack } from '../../shared/local/stack.js';
import { call, testStack, waitForStatus } from '../helpers/stack.js';

const YEAR = osloDate(Date.now()).slice(0, 4);
const nifBody = (externalId: string) => ({
  amount: '450', externalId, isPaid: 'false', orgId: '7896', paidDate: `${YEAR}-05-08`, paidToOrgId: '4568',
  paymentCategory: 'Club membership', paymentTypeId: 0, periodFrom: `${YEAR}-05-08`, periodTo: `${YEAR}-06-08`, personId: '8675682',
});
const NIF_ROUTES: [string, Record<string, string>][] = [
  ['/v1/nif/membership/payments', { ClubId: '4568' }],
  ['/v1/nif/corporate/payments', { ClubId: '16235' }],
  ['/v1/nif/payments', {}],
];

describe('keys (issue 13): refused before anything is recorded or posted; % and / round-trip', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await testStack({ cambio: { ratePerSecond: 1000 }, nif: { ratePerSecond: 1000 }, kontantanalys: { ratePerSecond: 1000, seededProviders: 10 } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('a Cambio contactId with a lone surrogate: 400 naming #/contactId, Cambio never called', async () => {
    const before = stack.cambio!.stats.noticeRequests;
    const r = await call(stack, 'POST', '/v1/cambio/payment-notices', { status: 'PAID', contactId: 'repro\ud800', paymentType: 'CARD' });
    expect(r.status).toBe(400);
    expect(r.headers.get('content-type')).toBe('application/problem+json');
    expect(r.body.type).toMatch(/validation-failed$/);
    expect(r.body.errors).toEqual([{ pointer: '#/contactId', detail: expect.stringMatching(/well-formed Unicode/) }]);
    expect(stack.cambio!.stats.noticeRequests).toBe(before);
  });

  it.each(NIF_ROUTES)('%s: an externalId with a lone surrogate is a 400 naming #/externalId; NIF never called', async (route, headers) => {
    const before = stack.nif!.stats.postRequests;
    const r = await call(stack, 'POST', route, nifBody('repro\ud800'), headers);
    expect(r.status).toBe(400);
    expect(r.body.errors).toEqual([{ pointer: '#/externalId', detail: expect.stringMatching(/well-formed Unicode/) }]);
    expect(stack.nif!.stats.postRequests).toBe(before);
  });

  it('a Cambio contactId sent in NFC and then in NFD (the same on screen): the NFD one is a 400 naming the rule, one record, one post', async () => {
    const nfc = 'T\u00f6rnros-\u00e5';
    const nfd = nfc.normalize('NFD');
    const first = await call(stack, 'POST', '/v1/cambio/payment-notices', { status: 'PAID', contactId: nfc, paymentType: 'CARD' });
    expect([201, 202]).toContain(first.status);
    await waitForStatus(stack, 'cambio', nfc, ['posted']);
    const before = stack.cambio!.stats.noticeRequests;
    const second = await call(stack, 'POST', '/v1/cambio/payment-notices', { status: 'PAID', contactId: nfd, paymentType: 'CARD' });
    expect(second.status).toBe(400);
    expect(second.body.errors).toEqual([{ pointer: '#/contactId', detail: expect.stringMatching(/normalization form C \(NFC\)/) }]);
    expect(stack.cambio!.stats.noticeRequests).toBe(before);
    expect(await stack.deps.store.get(`cambio#default#${nfd}`)).toBeUndefined();
  });

  it.each(NIF_ROUTES)('%s: externalIds holding U+0000 or U+FEFF, or in NFD, are a 400 naming the rule; nothing recorded, NIF never called', async (route, headers) => {
    const before = stack.nif!.stats.postRequests;
    for (const [externalId, rule] of [['ab\u0000c', /control or format characters/], ['ab\ufeffc', /control or format characters/], ['Bj\u00f8rn-\u00e9'.normalize('NFD'), /NFC/]] as const) {
      const r = await call(stack, 'POST', route, nifBody(externalId), headers);
      expect(r.status, JSON.stringify(externalId)).toBe(400);
      expect(r.body.errors).toEqual([{ pointer: '#/externalId', detail: expect.stringMatching(rule) }]);
    }
    expect(stack.nif!.stats.postRequests).toBe(before);
  });

  it('status keys over DynamoDB\'s limit are a 400 explaining why, not a 500', async () => {
    const long = 'k'.repeat(3000);
    const status = await call(stack, 'GET', `/v1/payments/cambio/${long}`);
    expect(status.status).toBe(400);
    expect(status.body.errors).toEqual([{ pointer: 'path:key', detail: expect.stringMatching(/^is too long/) }]);
    expect(status.body.detail).toContain('paybridge refuses such keys when a payment arrives');
    const nif = await call(stack, 'GET', `/v1/payments/nif-membership/4568:${long}`);
    expect(nif.status).toBe(400);
    const ka = await call(stack, 'GET', `/v1/kontantanalys/services/${long}`);
    expect(ka.status).toBe(400);
    expect(ka.body.errors[0].pointer).toBe('path:externalId');
  });

  it('a path that is not valid percent-encoding (or encodes a lone surrogate) is a 400 naming the parameter', async () => {
    for (const bad of ['a%zz', 'a%E0%A4', '%ED%A0%80']) {
      const r = await call(stack, 'GET', `/v1/payments/cambio/${bad}`);
      expect(r.status, bad).toBe(400);
      expect(r.body.errors, bad).toEqual([{ pointer: 'path:key', detail: expect.stringMatching(/percent-encoding/) }]);
    }
    const ka = await call(stack, 'PUT', '/v1/kontantanalys/templates/x%zz', { principalOrganisationId: 3, serviceTypeId: 3, serviceFormId: 4 });
    expect(ka.status).toBe(400);
    expect(ka.body.errors).toEqual([{ pointer: 'path:externalId', detail: expect.stringMatching(/percent-encoding/) }]);
  });

  it('a Cambio contactId holding %25 and / is posted, and read back with the key percent-encoded once', async () => {
    const contactId = 'a%25b/c';
    const r = await call(stack, 'POST', '/v1/cambio/payment-notices', { status: 'PAID', contactId, paymentType: 'CARD' });
    // Sent by the route (201), or queued on a busy machine (202): the same location either way.
    expect([201, 202], JSON.stringify(r.body)).toContain(r.status);
    const path = `/v1/payments/cambio/${encodeURIComponent(contactId)}`;
    expect(path).toBe('/v1/payments/cambio/a%2525b%2Fc');
    expect(r.headers.get('location')).toBe(path);
    expect(r.body.statusUrl).toBe(path);
    await waitForStatus(stack, 'cambio', contactId, ['posted']);
    const got = await call(stack, 'GET', path);
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ key: contactId, status: 'posted' });
    // Decoded once, not twice: the doubly-decoded key is another one, never received.
    expect((await call(stack, 'GET', '/v1/payments/cambio/a%25b%2Fc')).status).toBe(404);
    expect(stack.cambio!.stats.applied[contactId]).toBe(1);
  });

  it('NIF externalIds holding % are posted and read back on the first and second generation', async () => {
    // Sent by the route (201), or queued when a busy machine makes the claim late for its permit (202).
    const first = await call(stack, 'POST', '/v1/nif/membership/payments', nifBody('50%off/x'), { ClubId: '4568' });
    expect([201, 202]).toContain(first.status);
    const firstPath = `/v1/payments/nif-membership/${encodeURIComponent('4568:50%off/x')}`;
    expect(first.headers.get('location')).toBe(firstPath);
    await waitForStatus(stack, 'nif-membership', '4568:50%off/x', ['posted']);
    expect((await call(stack, 'GET', firstPath)).body).toMatchObject({ key: '4568:50%off/x', status: 'posted' });

    const second = await call(stack, 'POST', '/v1/nif/payments', nifBody('100%25'));
    expect([201, 202]).toContain(second.status);
    await waitForStatus(stack, 'nif', '100%25', ['posted']);
    const secondPath = `/v1/payments/nif/${encodeURIComponent('100%25')}`;
    expect(secondPath).toBe('/v1/payments/nif/100%2525');
    expect((await call(stack, 'GET', secondPath)).body).toMatchObject({ key: '100%25', status: 'posted' });
    expect(stack.nif!.count('50%off/x')).toBe(1);
    expect(stack.nif!.count('100%25')).toBe(1);
  });
});
