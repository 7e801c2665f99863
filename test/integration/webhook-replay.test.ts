import { request } from 'node:http';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordPk } from '../../shared/core/types.js';
import { deliveryBinding } from '../../shared/http/webhooks.js';
import { DEV_WEBHOOK_SECRET, type Stack } from '../../shared/local/stack.js';
import { documentClient, makeDynamoClient } from '../../shared/store/dynamo.js';
import { call, DEV_API_KEY, eventually, testStack, type Reply } from '../helpers/stack.js';

/**
 * A captured signed delivery cannot be turned into another payment (issue 12). The review's
 * reproduction: one signed NIF membership delivery, replayed with another ClubId and to the corporate
 * route, became three payments in NIF.
 */
const secret = (seed: string) => `whsec_${Buffer.from(seed.padEnd(32, '!')).toString('base64')}`;
const TERMINAL_OLD = secret('terminal-secret-2025');
const TERMINAL_NEW = secret('terminal-secret-2026');
const MEMBERSHIP = '/v1/nif/membership/payments';
const CORPORATE = '/v1/nif/corporate/payments';
const CAMBIO = '/v1/cambio/payment-notices';

const membership = (externalId?: string) => ({
  amount: '450', ...(externalId ? { externalId } : {}), isPaid: 'true', orgId: '4568', paidDate: '2026-05-08', paidToOrgId: '4568',
  paymentCategory: 'Club membership', paymentTypeId: 0, periodFrom: '2026-05-08', periodTo: '2026-06-08', personId: '8675682',
});

interface Signed {
  body: string;
  signature: Record<string, string>;
}

/** A delivery as a Standard Webhooks sender makes it: id, timestamp and body signed, nothing else. */
function sign(id: string, payload: unknown, key = DEV_WEBHOOK_SECRET): Signed {
  return signRaw(id, JSON.stringify(payload), key);
}

function signRaw(id: string, body: string, key = DEV_WEBHOOK_SECRET): Signed {
  const at = new Date();
  return { body, signature: { 'webhook-id': id, 'webhook-timestamp': String(Math.floor(at.getTime() / 1000)), 'webhook-signature': new Webhook(key).sign(id, at, body) } };
}

describe('webhook deliveries are bound to their id: route, path, target headers and body', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await testStack({
      env: { API_KEYS: `${DEV_API_KEY},pos=key-of-pos`, WEBHOOK_SECRET: `${DEV_WEBHOOK_SECRET} terminal=${TERMINAL_OLD} terminal=${TERMINAL_NEW}` },
      cambio: { ratePerSecond: 1000 },
      nif: { ratePerSecond: 1000 },
      kontantanalys: { ratePerSecond: 1000, seededProviders: 10 },
      kontantanalysSyncIntervalMs: false,
    });
  });
  afterAll(async () => {
    await stack?.close();
  });

  /** Sends a signed delivery with only the unsigned parts chosen here (route, headers): what a replayer can change. */
  async function deliver(method: string, path: string, signed: Signed, headers: Record<string, string> = {}): Promise<Reply> {
    const res = await fetch(`${stack.url}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...signed.signature, ...headers },
      body: signed.body,
      signal: AbortSignal.timeout(20_000),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
  }

  const posts = () => stack.nif!.stats.postRequests;
  const stored = (system: string, tenant: string, key: string) => stack.deps.store.get(recordPk(system, tenant, key));
  /**
   * A delivery that posts answers 201 when its first attempt is made in process and 202 when a busy
   * machine queues it: either is accepted, and the record is waited for until posted. Read from the
   * store, since a sender's records are not visible to the dev key on the status route.
   */
  const created = (reply: Reply) => expect([201, 202], JSON.stringify(reply.body)).toContain(reply.status);
  const posted = (system: string, tenant: string, key: string) =>
    eventually(async () => {
      const rec = await stored(system, tenant, key);
      return rec?.status === 'posted' ? rec : undefined;
    });

  it('replayed into another club, or to another route, it is refused with 409 and posts nothing', async () => {
    const delivery = sign('msg_club', membership('wh-club'));
    const paymentsBefore = stack.nif!.payments.length;
    created(await deliver('POST', MEMBERSHIP, delivery, { ClubId: '4568' }));
    await posted('nif-membership', '4568', '4568:wh-club');
    const sent = posts();

    const otherClub = await deliver('POST', MEMBERSHIP, delivery, { ClubId: '16235' });
    expect(otherClub.status).toBe(409);
    expect(otherClub.headers.get('content-type')).toBe('application/problem+json');
    expect(otherClub.body.type).toMatch(/webhook-replayed$/);
    expect(otherClub.body.detail).toContain('header ClubId');
    expect(otherClub.body.detail).not.toContain('16235');

    for (const [path, headers] of [[CORPORATE, { ClubId: '16235' }], [CORPORATE, { ClubId: '4568' }], ['/v1/nif/payments', {}]] as const) {
      const r = await deliver('POST', path, delivery, headers);
      expect(r.status, path).toBe(409);
      expect(r.body.type).toMatch(/webhook-replayed$/);
      expect(r.body.detail).toContain(`the route (first POST ${MEMBERSHIP})`);
    }
    expect(posts()).toBe(sent);
    // The review measured three payments from this; now there is one.
    expect(stack.nif!.payments.length - paymentsBefore).toBe(1);
    expect(await stored('nif-membership', '16235', '16235:wh-club')).toBeUndefined();
    expect(await stored('nif-corporate', '16235', '16235:wh-club')).toBeUndefined();
    expect(await stored('nif-corporate', '4568', '4568:wh-club')).toBeUndefined();
  });

  it('the same delivery twice: the second gets the first answer and posts nothing', async () => {
    const delivery = sign('msg_twice', membership('wh-twice'));
    const first = await deliver('POST', MEMBERSHIP, delivery, { ClubId: '4568' });
    created(first);
    await posted('nif-membership', '4568', '4568:wh-twice');
    const sent = posts();
    const reads = stack.nif!.stats.readRequests;
    const second = await deliver('POST', MEMBERSHIP, delivery, { ClubId: '4568' });
    // The first answer as it was given (a 202 is kept as well as a 201), even though the payment has posted since.
    expect(second.status).toBe(first.status);
    expect(second.body).toEqual(first.body);
    expect(second.headers.get('location')).toBe(first.headers.get('location'));
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect(posts()).toBe(sent);
    expect(stack.nif!.stats.readRequests).toBe(reads);
  });

  it('the same id with another body or another Idempotency-Key: 409, nothing posted', async () => {
    // No externalId: the Idempotency-Key header chooses the payment's key.
    const keyless = sign('msg_idem', membership());
    created(await deliver('POST', MEMBERSHIP, keyless, { ClubId: '4568', 'Idempotency-Key': 'idem-a' }));
    await posted('nif-membership', '4568', '4568:idem:idem-a');
    const sent = posts();
    const otherKey = await deliver('POST', MEMBERSHIP, keyless, { ClubId: '4568', 'Idempotency-Key': 'idem-b' });
    expect(otherKey.status).toBe(409);
    expect(otherKey.body.detail).toContain('header Idempotency-Key');
    const withoutKey = await deliver('POST', MEMBERSHIP, keyless, { ClubId: '4568' });
    expect(withoutKey.status).toBe(409);
    // The sender itself signing another body under an id it used: also one delivery per id.
    const otherBody = await deliver('POST', MEMBERSHIP, sign('msg_idem', { ...membership(), amount: '500' }), { ClubId: '4568', 'Idempotency-Key': 'idem-a' });
    expect(otherBody.status).toBe(409);
    expect(otherBody.body.detail).toContain('the body');
    expect(posts()).toBe(sent);
    expect(await stored('nif-membership', '4568', '4568:idem:idem-b')).toBeUndefined();
  });

  it("Cambio: another patient header is another delivery; the memory holds hashes, never the header's value", async () => {
    const notice = sign('msg_patient', { status: 'PAID', contactId: 'wh-patient', paymentType: 'CARD' });
    const first = await deliver('POST', CAMBIO, notice, { patient: '191212121212' });
    created(first);
    await posted('cambio', 'default', 'wh-patient');
    const before = stack.cambio!.stats.noticeRequests;
    const r = await deliver('POST', CAMBIO, notice, { patient: '201010101010' });
    expect(r.status).toBe(409);
    expect(r.body.detail).toContain('header patient');
    expect(stack.cambio!.stats.noticeRequests).toBe(before);
    const client = makeDynamoClient({ endpoint: stack.dynamoEndpoint });
    try {
      const item = (await documentClient(client).send(new GetCommand({ TableName: stack.deps.config.TABLE_NAME, Key: { pk: 'webhook#webhook#msg_patient' } }))).Item;
      expect(item).toMatchObject({ binding: { route: `POST ${CAMBIO}`, clubId: null, patient: expect.stringMatching(/^[0-9a-f]{64}$/) }, answer: { status: first.status } });
      // Remembered well beyond the 5-minute tolerance.
      expect(item?.ttl - Date.now() / 1000).toBeGreaterThan(55 * 60);
      expect(JSON.stringify(item)).not.toMatch(/191212121212|201010101010/);
    } finally {
      client.destroy();
    }
  });

  it('Kontantanalys: a PUT cannot be sent again to another externalId (the path is bound too)', async () => {
    const service = sign('msg_put', { providerId: 1, servicePrincipalId: 2, serviceTypeId: 1, forms: ['Uttagsautomat'], active: true, properties: { lst: true } });
    created(await deliver('PUT', '/v1/kontantanalys/services/wh-atm-1', service));
    await posted('kontantanalys', 'default', 'services:wh-atm-1');
    const requests = stack.kontantanalys!.stats.requests;
    const other = await deliver('PUT', '/v1/kontantanalys/services/wh-atm-2', service);
    expect(other.status).toBe(409);
    expect(other.body.detail).toContain('the path');
    expect(stack.kontantanalys!.stats.requests).toBe(requests);
    expect(await stored('kontantanalys', 'default', 'services:wh-atm-2')).toBeUndefined();
  });

  it('while the first delivery is still being handled, the same one gets 409 with Retry-After; a dead first one is taken over', async () => {
    const delivery = sign('msg_busy', membership('wh-busy'));
    const binding = deliveryBinding({ method: 'POST', resource: MEMBERSHIP, pathParameters: {}, headers: { clubid: '4568' }, rawBody: delivery.body });
    const now = Date.now();
    // Another container holds it, with 20 s of its invocation left.
    expect((await stack.deps.webhooks.claim({ sender: 'webhook', id: 'msg_busy', binding, owner: 'elsewhere', leaseUntil: now + 20_000, expiresAt: Math.floor(now / 1000) + 3600 }, now)).claimed).toBe(true);
    const sent = posts();
    const busy = await deliver('POST', MEMBERSHIP, delivery, { ClubId: '4568' });
    expect(busy.status).toBe(409);
    expect(busy.body.type).toMatch(/webhook-in-progress$/);
    expect(Number(busy.headers.get('retry-after'))).toBeGreaterThanOrEqual(15);
    expect(Number(busy.headers.get('retry-after'))).toBeLessThanOrEqual(20);
    expect(posts()).toBe(sent);

    // A container that died while handling its delivery: once its lease has passed, the same delivery goes through.
    const dead = sign('msg_dead', membership('wh-dead'));
    const deadBinding = deliveryBinding({ method: 'POST', resource: MEMBERSHIP, pathParameters: {}, headers: { clubid: '4568' }, rawBody: dead.body });
    await stack.deps.webhooks.claim({ sender: 'webhook', id: 'msg_dead', binding: deadBinding, owner: 'crashed', leaseUntil: now - 1, expiresAt: Math.floor(now / 1000) + 3600 }, now - 30_000);
    created(await deliver('POST', MEMBERSHIP, dead, { ClubId: '4568' }));
    await posted('nif-membership', '4568', '4568:wh-dead');
    expect(posts()).toBe(sent + 1);
  });

  it('a passing answer (409 key taken, 5xx) is not kept: the same delivery is handled again', async () => {
    created(await call(stack, 'POST', CAMBIO, { status: 'PAID', contactId: 'wh-taken', paymentType: 'CASH' }, { 'x-api-key': 'key-of-pos' }));
    await posted('cambio', 'default', 'wh-taken');
    const delivery = sign('msg_taken', { status: 'PAID', contactId: 'wh-taken', paymentType: 'CASH' });
    const first = await deliver('POST', CAMBIO, delivery);
    expect(first.status).toBe(409);
    expect(first.body.type).toMatch(/idempotency-key-taken$/);
    const again = await deliver('POST', CAMBIO, delivery);
    expect(again.status).toBe(409);
    expect(again.body.type).toMatch(/idempotency-key-taken$/);
    expect(again.headers.get('idempotent-replayed')).toBeNull();
  });

  it("rotation: deliveries signed with the sender's old and new secret both go through, as that sender", async () => {
    const old = await deliver('POST', CAMBIO, sign('msg_rot_old', { status: 'PAID', contactId: 'wh-rot-old', paymentType: 'CARD' }, TERMINAL_OLD));
    const fresh = await deliver('POST', CAMBIO, sign('msg_rot_new', { status: 'PAID', contactId: 'wh-rot-new', paymentType: 'CARD' }, TERMINAL_NEW));
    created(old);
    created(fresh);
    expect((await posted('cambio', 'default', 'wh-rot-old')).caller).toBe('terminal');
    expect((await posted('cambio', 'default', 'wh-rot-new')).caller).toBe('terminal');
    // One sender's ids are its own: another sender may use the same id.
    created(await deliver('POST', CAMBIO, sign('msg_rot_old', { status: 'PAID', contactId: 'wh-rot-other', paymentType: 'CARD' })));
    expect((await posted('cambio', 'default', 'wh-rot-other')).caller).toBe('webhook');
  });

  /** A request fetch will not make (a GET with a body), through node:http. */
  function rawRequest(method: string, path: string, headers: Record<string, string>, body: string): Promise<{ status: number; headers: Record<string, unknown>; body: any }> {
    const { port } = new URL(stack.url);
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: Number(port), method, path, headers: { ...headers, 'content-length': Buffer.byteLength(body) }, timeout: 10_000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text ? JSON.parse(text) : undefined });
        });
      });
      req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
      req.on('error', reject);
      req.end(body);
    });
  }

  it('a signed GET is one read, bound to its path: replayed to another record of the sender it is refused (issue 20 item 8)', async () => {
    for (const key of ['wh-get-a', 'wh-get-b']) expect([201, 202]).toContain((await deliver('POST', CAMBIO, sign(`msg_post_${key}`, { status: 'PAID', contactId: key, paymentType: 'CARD' }))).status);
    const signed = signRaw('msg_get_1', '');
    const read = (key: string) => fetch(`${stack.url}/v1/payments/cambio/${key}`, { headers: signed.signature, signal: AbortSignal.timeout(10_000) });
    const first = await read('wh-get-a');
    expect(first.status).toBe(200);
    expect(((await first.json()) as { key: string }).key).toBe('wh-get-a');
    // On main: 200 with wh-get-b's record, for five minutes, to whoever saw the first request.
    const other = await read('wh-get-b');
    expect(other.status).toBe(409);
    const refused = (await other.json()) as Record<string, unknown>;
    expect(refused.type).toMatch(/webhook-replayed$/);
    expect(refused).not.toHaveProperty('history');
    // The same read again: the first answer, marked as replayed (as a POST's).
    const again = await read('wh-get-a');
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
  });

  it('a captured signed POST does not read a record as a GET with its body (issue 20 item 8)', async () => {
    expect([201, 202]).toContain((await deliver('POST', CAMBIO, sign('msg_post_secret', { status: 'PAID', contactId: 'wh-pg-secret', paymentType: 'CARD' }))).status);
    const post = sign('msg_post_as_get', { status: 'PAID', contactId: 'wh-post-get', paymentType: 'CARD' });
    expect([201, 202]).toContain((await deliver('POST', CAMBIO, post)).status);
    const replay = await rawRequest('GET', '/v1/payments/cambio/wh-pg-secret', { 'content-type': 'application/json', ...post.signature }, post.body);
    // On main: 200 with the sender's other record; now the id is known as another delivery.
    expect(replay.status).toBe(409);
    expect(replay.body.type).toMatch(/webhook-replayed$/);
  });

  it('a signed GET of the events is bound to its query string: with another limit it is refused, not answered with the first one (review of e8caa52)', async () => {
    const read = signRaw('msg_ev_limit', '', TERMINAL_NEW);
    const get = (query: string) => fetch(`${stack.url}/v1/events${query}`, { headers: read.signature, signal: AbortSignal.timeout(10_000) });
    const first = await get('?limit=1');
    expect(first.status).toBe(200);
    // The same delivery again (a repeated name whose last value is the same reads the same): the first answer.
    for (const query of ['?limit=1', '?limit=7&limit=1']) {
      const again = await get(query);
      expect(again.status, query).toBe(200);
      expect(again.headers.get('idempotent-replayed'), query).toBe('true');
    }
    // Another query is another read: 409, as another path is, never the first read's answer passed off as this one's.
    for (const query of ['?limit=1000', '', '?limit=1&since=0']) {
      const other = await get(query);
      expect(other.status, query).toBe(409);
      const refused = (await other.json()) as { type: string; detail: string };
      expect(refused.type).toMatch(/webhook-replayed$/);
      expect(refused.detail).toContain('the query string');
    }
  });

  it('a captured signed GET cannot be replayed at the sender\'s event endpoints (issue 21 on issue 20 item 8)', async () => {
    // The terminal sender registers an endpoint (signed), then reads its events (signed, empty body).
    const made = await deliver('POST', '/v1/event-endpoints', sign('msg_ep_make', { url: 'http://127.0.0.1:9/never' }, TERMINAL_NEW));
    expect(made.status).toBe(201);
    const id = (made.body as { id: string }).id;
    const read = signRaw('msg_ep_read', '', TERMINAL_NEW);
    expect((await fetch(`${stack.url}/v1/events`, { headers: read.signature, signal: AbortSignal.timeout(10_000) })).status).toBe(200);
    // Whoever saw that read replays its headers (the signature does not cover method or path) to delete or
    // re-key the endpoint. Before the events routes remembered deliveries: 204 and 200.
    for (const [method, path] of [['DELETE', `/v1/event-endpoints/${id}`], ['POST', `/v1/event-endpoints/${id}/rotate-secret`]] as const) {
      const replay = await rawRequest(method, path, read.signature, '');
      expect(replay.status, `${method} ${path}`).toBe(409);
      expect(replay.body.type).toMatch(/webhook-replayed$/);
    }
    const look = signRaw('msg_ep_look', '', TERMINAL_NEW);
    const still = await fetch(`${stack.url}/v1/event-endpoints/${id}`, { headers: look.signature, signal: AbortSignal.timeout(10_000) });
    expect(still.status).toBe(200);
  });
});
