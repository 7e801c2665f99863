import type { APIGatewayProxyEvent } from 'aws-lambda';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeHandler as getPayment } from '../../functions/get-payment.js';
import { recordPk } from '../../shared/core/types.js';
import { lambdaContext } from '../../shared/local/server.js';
import type { Stack } from '../../shared/local/stack.js';
import { call, DEV_API_KEY, testStack, waitForStatus, type Reply } from '../helpers/stack.js';

/** Callers are tenants (issue 12): each sees and changes only what it submitted. */
const POS = { 'x-api-key': 'key-of-pos' };
const WEB = { 'x-api-key': 'key-of-web' };
const BARE = { 'x-api-key': DEV_API_KEY };
const TERMINAL_SECRET = `whsec_${Buffer.from('terminal-secret-of-the-pos-caller').toString('base64')}`;

const notice = (contactId: string) => ({ status: 'PAID', contactId, paymentType: 'CARD' });
/**
 * A payment post answers 201 when its first attempt is made in process and 202 when a busy machine
 * queues it: either is accepted, and the record is waited for (as pos sees it) until posted.
 */
async function postedAsPos(stack: Stack, reply: Reply, system: string, key: string) {
  expect([201, 202], JSON.stringify(reply.body)).toContain(reply.status);
  return waitForStatus(stack, system, key, ['posted'], 15_000, POS);
}

const service = { providerId: 1, servicePrincipalId: 2, serviceTypeId: 1, forms: ['Uttagsautomat'], active: true, properties: { lst: true } };

describe('callers are tenants: the read routes answer only the caller that submitted', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await testStack({
      env: { API_KEYS: `${DEV_API_KEY},pos=key-of-pos,web=key-of-web`, WEBHOOK_SECRET: `pos=${TERMINAL_SECRET}` },
      cambio: { ratePerSecond: 1000 },
      kontantanalys: { ratePerSecond: 1000, seededProviders: 10 },
      kontantanalysSyncIntervalMs: false,
    });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('the record keeps who submitted it', async () => {
    await postedAsPos(stack, await call(stack, 'POST', '/v1/cambio/payment-notices', notice('t-stored'), POS), 'cambio', 't-stored');
    expect((await stack.deps.store.get(recordPk('cambio', 'default', 't-stored')))?.caller).toBe('pos');
  });

  it("GET /v1/payments: 200 to its caller, 404 to another, the same 404 as a key never received", async () => {
    await postedAsPos(stack, await call(stack, 'POST', '/v1/cambio/payment-notices', notice('t-status'), POS), 'cambio', 't-status');
    expect((await call(stack, 'GET', '/v1/payments/cambio/t-status', undefined, POS)).status).toBe(200);
    for (const other of [WEB, BARE]) {
      const r = await call(stack, 'GET', '/v1/payments/cambio/t-status', undefined, other);
      expect(r.status).toBe(404);
      expect(r.body.type).toMatch(/payment-not-found$/);
      expect(JSON.stringify(r.body)).not.toMatch(/posted|CARD/);
    }
    const never = await call(stack, 'GET', '/v1/payments/cambio/t-never', undefined, WEB);
    expect(never.body.detail.replace('t-never', 'K')).toBe((await call(stack, 'GET', '/v1/payments/cambio/t-status', undefined, WEB)).body.detail.replace('t-status', 'K'));
  });

  it('another caller cannot take the key over either: 409, nothing sent', async () => {
    const before = stack.cambio!.stats.noticeRequests;
    const r = await call(stack, 'POST', '/v1/cambio/payment-notices', notice('t-status'), WEB);
    expect(r.status).toBe(409);
    expect(r.body.type).toMatch(/idempotency-key-taken$/);
    expect(stack.cambio!.stats.noticeRequests).toBe(before);
  });

  it('Kontantanalys GET answers 404 to another caller, and its PUT cannot change another caller\'s object', async () => {
    await postedAsPos(stack, await call(stack, 'PUT', '/v1/kontantanalys/services/t-atm', service, POS), 'kontantanalys', 'services:t-atm');
    expect((await call(stack, 'GET', '/v1/kontantanalys/services/t-atm', undefined, POS)).status).toBe(200);
    const foreign = await call(stack, 'GET', '/v1/kontantanalys/services/t-atm', undefined, WEB);
    expect(foreign.status).toBe(404);
    expect(foreign.body.type).toMatch(/payment-not-found$/);
    const requests = stack.kontantanalys!.stats.requests;
    const overwrite = await call(stack, 'PUT', '/v1/kontantanalys/services/t-atm', { ...service, active: false }, WEB);
    expect(overwrite.status).toBe(409);
    expect(overwrite.body.type).toMatch(/idempotency-key-taken$/);
    expect(stack.kontantanalys!.stats.requests).toBe(requests);
    expect((await stack.deps.store.get(recordPk('kontantanalys', 'default', 'services:t-atm')))?.request).toMatchObject({ attributes: { active: true } });
  });

  it('a record from before callers were stored stays visible to every caller', async () => {
    await postedAsPos(stack, await call(stack, 'POST', '/v1/cambio/payment-notices', notice('t-template'), POS), 'cambio', 't-template');
    const template = (await stack.deps.store.get(recordPk('cambio', 'default', 't-template')))!;
    const { caller: _c, ...old } = { ...template, pk: recordPk('cambio', 'default', 't-old'), key: 't-old' };
    expect((await stack.deps.store.claim(old)).claimed).toBe(true);
    for (const who of [POS, WEB, BARE]) expect((await call(stack, 'GET', '/v1/payments/cambio/t-old', undefined, who)).status).toBe(200);
  });

  it("in AWS, the authorizer's caller is used when it agrees with the key, and the request refused when not", async () => {
    await postedAsPos(stack, await call(stack, 'POST', '/v1/cambio/payment-notices', notice('t-gateway'), POS), 'cambio', 't-gateway');
    const event = (caller: string) =>
      ({
        resource: '/v1/payments/{system}/{key}',
        path: '/v1/payments/cambio/t-gateway',
        httpMethod: 'GET',
        headers: { 'X-Api-Key': 'key-of-pos' },
        pathParameters: { system: 'cambio', key: 't-gateway' },
        body: null,
        isBase64Encoded: false,
        requestContext: { requestId: `gw-${caller}`, authorizer: { caller, method: 'api-key', principalId: `api-key:${caller}` } },
      }) as unknown as APIGatewayProxyEvent;
    const handler = getPayment(async () => stack.deps);
    expect((await handler(event('pos'), lambdaContext('getPayment', 'gw-1'))).statusCode).toBe(200);
    const mismatch = await handler(event('web'), lambdaContext('getPayment', 'gw-2'));
    expect(mismatch.statusCode).toBe(401);
    expect(JSON.parse(mismatch.body).detail).toMatch(/disagree about the caller/);
  });

  it('a webhook sender is a caller by its name: the x-api-key of the same name reads what it sent', async () => {
    const body = JSON.stringify(notice('t-webhook'));
    const at = new Date();
    const signed = { 'webhook-id': 'msg_tenant', 'webhook-timestamp': String(Math.floor(at.getTime() / 1000)), 'webhook-signature': new Webhook(TERMINAL_SECRET).sign('msg_tenant', at, body) };
    const res = await fetch(`${stack.url}/v1/cambio/payment-notices`, { method: 'POST', headers: { 'content-type': 'application/json', ...signed }, body, signal: AbortSignal.timeout(10_000) });
    // Posted in process (201) or queued on a busy machine (202): pos's key reads it once posted.
    expect([201, 202]).toContain(res.status);
    expect((await stack.deps.store.get(recordPk('cambio', 'default', 't-webhook')))?.caller).toBe('pos');
    await waitForStatus(stack, 'cambio', 't-webhook', ['posted'], 15_000, POS);
    expect((await call(stack, 'GET', '/v1/payments/cambio/t-webhook', undefined, POS)).status).toBe(200);
    expect((await call(stack, 'GET', '/v1/payments/cambio/t-webhook', undefined, WEB)).status).toBe(404);
  });
});
