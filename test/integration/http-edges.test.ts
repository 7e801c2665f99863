import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_WEBHOOK_SECRET, type Stack } from '../../shared/local/stack.js';
import { recordPk } from '../../shared/core/types.js';
import { call, eventually, statusOf, testStack, waitForStatus } from '../helpers/stack.js';

const ROUTE = '/v1/cambio/payment-notices';

describe('inbound authentication and bad input: a clear 4xx, nothing recorded, nothing sent', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await testStack({ env: { WEBHOOK_SECRET: DEV_WEBHOOK_SECRET } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  async function expectNothingHappened(contactId: string) {
    expect(await statusOf(stack, 'cambio', contactId)).toBeUndefined();
    expect(stack.cambio!.stats.applied[contactId]).toBeUndefined();
  }

  const raw = async (body: string, headers: Record<string, string>) => {
    const res = await fetch(`${stack.url}${ROUTE}`, { method: 'POST', headers, body, signal: AbortSignal.timeout(10_000) });
    return { status: res.status, type: res.headers.get('content-type'), body: (await res.json()) as any };
  };

  it('no credentials: 401 problem', async () => {
    const r = await raw(JSON.stringify({ status: 'PAID', contactId: 'a-none', paymentType: 'CARD' }), { 'content-type': 'application/json' });
    expect(r.status).toBe(401);
    expect(r.type).toBe('application/problem+json');
    expect(r.body).toMatchObject({ status: 401, title: 'Authentication required' });
    await expectNothingHappened('a-none');
  });

  it('a wrong x-api-key: 401', async () => {
    const r = await call(stack, 'POST', ROUTE, { status: 'PAID', contactId: 'a-wrong', paymentType: 'CARD' }, { 'x-api-key': 'nope' });
    expect(r.status).toBe(401);
    expect(r.body.detail).toContain('x-api-key is not valid');
    await expectNothingHappened('a-wrong');
  });

  it('a Standard Webhooks signature over the raw body is accepted', async () => {
    const body = JSON.stringify({ status: 'PAID', contactId: 'a-webhook', paymentType: 'CARD' });
    const ts = new Date();
    const signature = new Webhook(DEV_WEBHOOK_SECRET).sign('msg_1', ts, body);
    const r = await raw(body, {
      'content-type': 'application/json',
      'webhook-id': 'msg_1',
      'webhook-timestamp': String(Math.floor(ts.getTime() / 1000)),
      'webhook-signature': signature,
    });
    // Posted in process (201), or queued on a busy machine (202): accepted either way, and it posts.
    expect([201, 202], JSON.stringify(r.body)).toContain(r.status);
    // The sender's record (not the dev key's, so read from the store).
    await eventually(async () => (await stack.deps.store.get(recordPk('cambio', 'default', 'a-webhook')))?.status === 'posted');
    expect(stack.cambio!.stats.applied['a-webhook']).toBe(1);
  });

  it('a tampered body, a stale timestamp or a missing header: 401', async () => {
    const body = JSON.stringify({ status: 'PAID', contactId: 'a-tampered', paymentType: 'CARD' });
    const wh = new Webhook(DEV_WEBHOOK_SECRET);
    const now = new Date();
    const headers = (ts: Date, sig: string) => ({
      'content-type': 'application/json',
      'webhook-id': 'msg_2',
      'webhook-timestamp': String(Math.floor(ts.getTime() / 1000)),
      'webhook-signature': sig,
    });
    const tampered = await raw(body.replace('CARD', 'CASH'), headers(now, wh.sign('msg_2', now, body)));
    expect(tampered.status).toBe(401);
    expect(tampered.body.detail).toMatch(/signature was not accepted/);
    const old = new Date(Date.now() - 10 * 60_000);
    const stale = await raw(body, headers(old, wh.sign('msg_2', old, body)));
    expect(stale.status).toBe(401);
    expect(stale.body.detail).toMatch(/too old/i);
    const incomplete = await raw(body, { 'content-type': 'application/json', 'webhook-id': 'msg_2' });
    expect(incomplete.status).toBe(401);
    expect(incomplete.body.detail).toContain('missing webhook-timestamp, webhook-signature');
    await expectNothingHappened('a-tampered');
  });

  it('malformed JSON: 400', async () => {
    const r = await call(stack, 'POST', ROUTE, '{"status":"PAID",');
    expect(r.status).toBe(400);
    expect(r.body.type).toMatch(/malformed-json$/);
  });

  it('a wrong content type: 415', async () => {
    const r = await call(stack, 'POST', ROUTE, 'status=PAID&contactId=a-form&paymentType=CARD', { 'content-type': 'application/x-www-form-urlencoded' });
    expect(r.status).toBe(415);
    expect(r.body.detail).toContain('application/json');
    await expectNothingHappened('a-form');
  });

  it('a body over 256 KiB: 413', async () => {
    const big = JSON.stringify({ status: 'PAID', contactId: 'a-big', paymentType: 'CARD', pad: 'x'.repeat(256 * 1024) });
    const r = await call(stack, 'POST', ROUTE, big);
    expect(r.status).toBe(413);
    await expectNothingHappened('a-big');
  });

  it('missing and wrong fields: 400 with one message per field', async () => {
    const r = await call(stack, 'POST', ROUTE, { paymentType: 'card', contactId: 42 });
    expect(r.status).toBe(400);
    expect(r.body.errors).toEqual([
      { pointer: '#/status', detail: 'is required' },
      { pointer: '#/contactId', detail: 'must be a string' },
      { pointer: '#/paymentType', detail: 'must be "CASH" or "CARD"' },
    ]);
  });

  it('a body that is not an object, an unknown field, a bad patient header: 400', async () => {
    expect((await call(stack, 'POST', ROUTE, '[]')).status).toBe(400);
    const unknown = await call(stack, 'POST', ROUTE, { status: 'PAID', contactId: 'a-extra', paymentType: 'CARD', amount: 100 });
    expect(unknown.body.errors).toEqual([{ pointer: '#/amount', detail: 'is not a field of this request' }]);
    const patient = await call(stack, 'POST', ROUTE, { status: 'PAID', contactId: 'a-patient', paymentType: 'CARD' }, { patient: 'x'.repeat(65) });
    expect(patient.status).toBe(400);
    expect(patient.body.errors).toEqual([{ pointer: 'header:patient', detail: 'must be at most 64 characters' }]);
    await expectNothingHappened('a-extra');
    await expectNothingHappened('a-patient');
  });

  it('the patient header is sent to Cambio but never shown by the status route', async () => {
    const r = await call(stack, 'POST', ROUTE, { status: 'PAID', contactId: 'a-with-patient', paymentType: 'CASH' }, { patient: '191212121212' });
    expect([201, 202], JSON.stringify(r.body)).toContain(r.status);
    const rec = await waitForStatus(stack, 'cambio', 'a-with-patient', ['posted']);
    expect(JSON.stringify(rec)).not.toContain('191212121212');
    expect(rec.request.patient).toBe('provided (not shown)');
  });

  it('serves the OpenAPI document, behind authentication like every route', async () => {
    const doc = await call(stack, 'GET', '/v1/openapi.json');
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toBe('3.1.0');
    expect((await call(stack, 'GET', '/v1/openapi.json', undefined, { 'x-api-key': 'nope' })).status).toBe(401);
  });

  it('unknown routes, systems and keys: 404 problems', async () => {
    expect((await call(stack, 'GET', '/v1/nowhere')).status).toBe(404);
    const sys = await call(stack, 'GET', '/v1/payments/paypal/x');
    expect(sys.status).toBe(404);
    expect(sys.body.detail).toContain('Known: cambio');
    expect((await call(stack, 'GET', '/v1/payments/cambio/never-sent')).body.type).toMatch(/payment-not-found$/);
    expect((await call(stack, 'GET', ROUTE)).status).toBe(405);
  });
});
