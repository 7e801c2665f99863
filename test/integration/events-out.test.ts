import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Webhook } from 'standardwebhooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from '../../shared/local/stack.js';
import type { DynamoExchange } from '../../shared/local/dynamo-tap.js';
import { call, DEV_API_KEY, eventually, testStack } from '../helpers/stack.js';
import { tempDir } from '../helpers/start.js';

/** A receiver on loopback that checks each delivery's signature and answers as `answer` says. */
interface Receiver {
  url: string;
  port: number;
  got: { id: string; type: string; data: Record<string, unknown>; verified: boolean }[];
  secret?: string;
  answer: (n: number) => number | 'hang';
  close(): Promise<void>;
}

async function receiver(port = 0): Promise<Receiver> {
  const r: Receiver = { url: '', port: 0, got: [], answer: () => 204, close: async () => undefined };
  let n = 0;
  const hanging: ServerResponse[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let verified = false;
      try {
        if (r.secret) new Webhook(r.secret).verify(body, req.headers as Record<string, string>);
        verified = Boolean(r.secret);
      } catch {
        verified = false;
      }
      const parsed = JSON.parse(body) as { id: string; type: string; data: Record<string, unknown> };
      expect(req.headers['webhook-id']).toBe(parsed.id);
      r.got.push({ ...parsed, verified });
      const a = r.answer(n++);
      if (a === 'hang') return void hanging.push(res);
      res.writeHead(a).end(a === 410 ? 'gone' : 'ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  r.port = (server.address() as AddressInfo).port;
  r.url = `http://127.0.0.1:${r.port}/hook`;
  r.close = async () => {
    for (const h of hanging) h.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return r;
}

const FAST = { schedule: [0, 150, 150, 150, 150], jitter: 0, timeoutMs: 1_500 };
const notice = (contactId: string) => ({ status: 'PAID', contactId, paymentType: 'CARD' });

describe('settlement events out (issue 21)', () => {
  let stack: Stack;
  const receivers: Receiver[] = [];
  beforeAll(async () => {
    stack = await testStack({ env: { API_KEYS: `${DEV_API_KEY},pos=key-of-pos,web=key-of-web` }, delivery: FAST });
  });
  afterAll(async () => {
    await stack?.close();
  });
  afterEach(async () => {
    for (const r of receivers.splice(0)) await r.close();
  });

  async function endpoint(r: Receiver, key = 'key-of-pos', body: Record<string, unknown> = {}) {
    const made = await call(stack, 'POST', '/v1/event-endpoints', { url: r.url, ...body }, { 'x-api-key': key });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    expect(made.body.secret).toMatch(/^whsec_/);
    r.secret = made.body.secret as string;
    return made.body as { id: string; secret: string };
  }

  it('delivers one signed payment.posted per posted payment, without personal data, and lists it', async () => {
    const r = await receiver();
    receivers.push(r);
    const ep = await endpoint(r);
    const posted = await call(stack, 'POST', '/v1/cambio/payment-notices', notice('evt-1'), { 'x-api-key': 'key-of-pos', patient: '197001011234' });
    expect([201, 202]).toContain(posted.status);
    const got = await eventually(async () => r.got.find((e) => e.data.key === 'evt-1'));
    expect(got).toMatchObject({ type: 'payment.posted', verified: true, data: { system: 'cambio', status: 'posted', sequence: 1, revision: 1, statusUrl: '/v1/payments/cambio/evt-1' } });
    expect(JSON.stringify(r.got)).not.toMatch(/197001011234|patient/);
    const listed = await call(stack, 'GET', '/v1/events', undefined, { 'x-api-key': 'key-of-pos' });
    expect(listed.body.events.map((e: { id: string }) => e.id)).toContain(got.id);
    const shown = await eventually(async () => {
      const s = await call(stack, 'GET', `/v1/events/${got.id}`, undefined, { 'x-api-key': 'key-of-pos' });
      return s.body.deliveries?.[0]?.status === 'delivered' ? s : undefined;
    });
    expect(shown.body.deliveries[0]).toMatchObject({ endpointId: ep.id, tries: 1, attempts: [{ status: 204 }] });
    // Another caller sees neither the endpoint nor the event.
    expect((await call(stack, 'GET', `/v1/event-endpoints/${ep.id}`, undefined, { 'x-api-key': 'key-of-web' })).status).toBe(404);
    expect((await call(stack, 'DELETE', `/v1/event-endpoints/${ep.id}`, undefined, { 'x-api-key': 'key-of-web' })).status).toBe(404);
    expect((await call(stack, 'GET', `/v1/events/${got.id}`, undefined, { 'x-api-key': 'key-of-web' })).status).toBe(404);
    // Exactly one event for the payment, even after the record is written again.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(r.got.filter((e) => e.data.key === 'evt-1')).toHaveLength(1);
    await call(stack, 'DELETE', `/v1/event-endpoints/${ep.id}`, undefined, { 'x-api-key': 'key-of-pos' });
  });

  it('an endpoint made or deleted between two payments is heard by the second one at once (the relay keeps endpoint lists only until a write)', async () => {
    const first = await receiver();
    const second = await receiver();
    receivers.push(first, second);
    await endpoint(first, 'key-of-web');
    // The relay reads web's endpoints for this payment's event and keeps the list.
    expect([201, 202]).toContain((await call(stack, 'POST', '/v1/cambio/payment-notices', notice('kept-1'), { 'x-api-key': 'key-of-web' })).status);
    await eventually(async () => first.got.find((e) => e.data.key === 'kept-1'));
    // Well within the time the relay keeps a list: a new endpoint, then a payment, then the old endpoint gone.
    const added = await endpoint(second, 'key-of-web');
    expect([201, 202]).toContain((await call(stack, 'POST', '/v1/cambio/payment-notices', notice('kept-2'), { 'x-api-key': 'key-of-web' })).status);
    await eventually(async () => second.got.find((e) => e.data.key === 'kept-2'), 5_000, 20);
    await eventually(async () => first.got.find((e) => e.data.key === 'kept-2'), 5_000, 20);
    expect((await call(stack, 'DELETE', `/v1/event-endpoints/${added.id}`, undefined, { 'x-api-key': 'key-of-web' })).status).toBe(204);
    expect([201, 202]).toContain((await call(stack, 'POST', '/v1/cambio/payment-notices', notice('kept-3'), { 'x-api-key': 'key-of-web' })).status);
    await eventually(async () => first.got.find((e) => e.data.key === 'kept-3'), 5_000, 20);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(second.got.map((e) => e.data.key)).toEqual(['kept-2']);
  });

  it('GET /v1/events takes a limit, and names it when it is not one', async () => {
    for (const id of ['lim-1', 'lim-2', 'lim-3']) expect([201, 202]).toContain((await call(stack, 'POST', '/v1/cambio/payment-notices', notice(id), { 'x-api-key': 'key-of-web' })).status);
    await eventually(async () => ((await call(stack, 'GET', '/v1/events?limit=1000', undefined, { 'x-api-key': 'key-of-web' })).body.events as unknown[]).length >= 3);
    const two = await call(stack, 'GET', '/v1/events?limit=2', undefined, { 'x-api-key': 'key-of-web' });
    expect(two.status).toBe(200);
    expect(two.body.events).toHaveLength(2);
    // A leading zero is the same number; a repeated name reads its last value, as API Gateway's queryStringParameters does.
    for (const query of ['limit=02', 'limit=1000&limit=2']) expect((await call(stack, 'GET', `/v1/events?${query}`, undefined, { 'x-api-key': 'key-of-web' })).body.events, query).toHaveLength(2);
    // Also: empty, a fullwidth digit (not ASCII), a sign or space, a value longer than any limit.
    for (const bad of ['0', '1001', 'ten', '2.5', '', '%EF%BC%92', '+2', '-2', '0x2', '9'.repeat(2000)]) {
      const refused = await call(stack, 'GET', `/v1/events?limit=${bad}`, undefined, { 'x-api-key': 'key-of-web' });
      expect(refused.status, bad).toBe(400);
      expect(refused.body.errors).toEqual([{ pointer: 'query:limit', detail: 'must be a whole number from 1 to 1000' }]);
    }
  });

  it('refuses bad endpoints with field-level 400s', async () => {
    const bad = await call(stack, 'POST', '/v1/event-endpoints', { url: 'http://10.0.0.7/hook', eventTypes: ['payment.nope'] }, { 'x-api-key': 'key-of-pos' });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toMatch(/problem\+json/);
    expect(bad.body.errors.map((e: { pointer: string }) => e.pointer).sort()).toEqual(['#/eventTypes/0']);
    const ssrf = await call(stack, 'POST', '/v1/event-endpoints', { url: 'https://169.254.169.254/latest/meta-data' }, { 'x-api-key': 'key-of-pos' });
    expect(ssrf.status).toBe(400);
    expect(ssrf.body.errors[0]).toMatchObject({ pointer: '#/url' });
  });

  it('retries a failing endpoint on the schedule, stops at 410, and keeps every attempt', async () => {
    const r = await receiver();
    receivers.push(r);
    r.answer = (n) => (n === 0 ? 500 : n === 1 ? 429 : 204);
    const ep = await endpoint(r);
    const test = await call(stack, 'POST', `/v1/event-endpoints/${ep.id}/test`, undefined, { 'x-api-key': 'key-of-pos' });
    expect(test.status).toBe(202);
    const delivered = await eventually(async () => {
      const d = await call(stack, 'GET', `/v1/event-endpoints/${ep.id}/deliveries`, undefined, { 'x-api-key': 'key-of-pos' });
      return d.body.deliveries.find((x: { eventId: string; status: string }) => x.eventId === test.body.eventId && x.status === 'delivered');
    });
    expect(delivered.attempts.map((a: { status: number }) => a.status)).toEqual([500, 429, 204]);
    expect(new Set(r.got.map((g) => g.id)).size).toBe(1);
    expect(r.got.every((g) => g.verified)).toBe(true);

    r.answer = () => 410;
    await call(stack, 'POST', `/v1/event-endpoints/${ep.id}/test`, undefined, { 'x-api-key': 'key-of-pos' });
    const disabled = await eventually(async () => {
      const e = await call(stack, 'GET', `/v1/event-endpoints/${ep.id}`, undefined, { 'x-api-key': 'key-of-pos' });
      return e.body.enabled === false ? e.body : undefined;
    });
    expect(disabled.disabled.reason).toMatch(/410/);
    await call(stack, 'DELETE', `/v1/event-endpoints/${ep.id}`, undefined, { 'x-api-key': 'key-of-pos' });
  });

  it('a hanging endpoint does not delay another endpoint', async () => {
    // Its own stack, with the 15 s timeout: an engine that sent to endpoints in one line would hold the
    // fast endpoint's events behind the hanging request for longer than the wait below allows.
    const own = await testStack({ env: { API_KEYS: 'web=key-of-web' }, delivery: { ...FAST, timeoutMs: 15_000 } });
    const slow = await receiver();
    const fast = await receiver();
    receivers.push(slow, fast);
    slow.answer = () => 'hang';
    try {
      for (const r of [slow, fast]) {
        const made = await call(own, 'POST', '/v1/event-endpoints', { url: r.url }, { 'x-api-key': 'key-of-web' });
        r.secret = made.body.secret as string;
      }
      for (let i = 0; i < 3; i++) await call(own, 'POST', '/v1/cambio/payment-notices', notice(`iso-${i}`), { 'x-api-key': 'key-of-web' });
      await eventually(async () => fast.got.filter((g) => String(g.data.key).startsWith('iso-')).length === 3, 12_000);
      // The slow endpoint still holds its first request, unanswered; nothing else was sent to it.
      expect(slow.got).toHaveLength(1);
      expect(fast.got.map((g) => g.data.key).sort()).toEqual(['iso-0', 'iso-1', 'iso-2']);
    } finally {
      await slow.close();
      await own.close();
    }
  });

  it("reports held, the operator's redrive and posted as one payment's events in sequence, through a receiver that failed first", async () => {
    const r = await receiver();
    receivers.push(r);
    // The receiver is down for its first two requests: the events wait and still arrive in order.
    r.answer = (n) => (n < 2 ? 503 : 204);
    const ep = await endpoint(r);
    stack.cambio!.faults.push('403', '403');
    await call(stack, 'POST', '/v1/cambio/payment-notices', notice('seq-1'), { 'x-api-key': 'key-of-pos' });
    await eventually(async () => (await call(stack, 'GET', '/v1/payments/cambio/seq-1', undefined, { 'x-api-key': 'key-of-pos' })).body.status === 'held');
    const { redrive } = await import('../../shared/core/operator.js');
    let n = 0;
    const done = await redrive({ store: stack.deps.store, queue: stack.queue, clock: Date.now, fence: () => ({ id: 'test-op', n: n++ }) }, 'cambio#default#seq-1', 'tester');
    expect(done.ok).toBe(true);
    await eventually(async () => r.got.filter((e) => e.data.key === 'seq-1' && (r.got.indexOf(e) >= 2)).length >= 3, 20_000).catch(async (err: Error) => {
      const now = await stack.deps.store.get("cambio#default#seq-1");
      throw new Error(`${err.message}: ${JSON.stringify(r.got.map((e) => [e.type, e.data.sequence, e.data.key]))} ${JSON.stringify(now?.history)} ${JSON.stringify((now as any)?.lastEvent)} ${JSON.stringify((now as any)?.eventsKey)}`);
    });
    const delivered = r.got.slice(2).filter((e) => e.data.key === 'seq-1');
    expect(delivered.map((e) => [e.type, e.data.sequence])).toEqual([
      ['payment.held', 1],
      ['payment.redriven', 2],
      ['payment.posted', 3],
    ]);
    expect(new Set(delivered.map((e) => e.id)).size).toBe(3);
    await call(stack, 'DELETE', `/v1/event-endpoints/${ep.id}`, undefined, { 'x-api-key': 'key-of-pos' });
  });

  it('rotates a secret: both sign for the overlap', async () => {
    const r = await receiver();
    receivers.push(r);
    const ep = await endpoint(r);
    const old = r.secret as string;
    const rotated = await call(stack, 'POST', `/v1/event-endpoints/${ep.id}/rotate-secret`, undefined, { 'x-api-key': 'key-of-pos' });
    expect(rotated.status).toBe(200);
    expect(rotated.body.signingSecrets).toHaveLength(2);
    await call(stack, 'POST', `/v1/event-endpoints/${ep.id}/test`, undefined, { 'x-api-key': 'key-of-pos' });
    await eventually(async () => r.got.length === 1);
    expect(r.got[0]?.verified).toBe(true);
    r.secret = rotated.body.secret as string;
    await call(stack, 'POST', `/v1/event-endpoints/${ep.id}/test`, undefined, { 'x-api-key': 'key-of-pos' });
    await eventually(async () => r.got.length === 2);
    expect(r.got[1]?.verified).toBe(true);
    expect(old).not.toBe(r.secret);
    await call(stack, 'DELETE', `/v1/event-endpoints/${ep.id}`, undefined, { 'x-api-key': 'key-of-pos' });
  });
});

describe('paybridge events (issue 21)', () => {
  it('lists, shows, resends and recovers events through the local API, and tails a receiver with signatures checked', async () => {
    const stack = await testStack({ delivery: FAST });
    const r = await receiver();
    const dir = tempDir('paybridge-events-cli-');
    const prior = process.env.PAYBRIDGE_LOCAL_FILE;
    try {
      const { startReceiver } = await import('../../shared/events/receiver.js');
      const made = await call(stack, 'POST', '/v1/event-endpoints', { url: r.url }, {});
      r.secret = made.body.secret as string;
      // npm start's receiver, registered as npm start does: its secret is known once the endpoint is made.
      let tailedSecret = '';
      const tailReceiver = await startReceiver({ port: 0, secret: () => [tailedSecret] });
      tailedSecret = (await call(stack, 'POST', '/v1/event-endpoints', { url: tailReceiver.url }, {})).body.secret as string;
      writeFileSync(join(dir.dir, 'local.json'), JSON.stringify({ apiUrl: stack.url, apiKey: DEV_API_KEY, dynamoEndpoint: stack.dynamoEndpoint, tableName: 'x', sandboxes: {}, eventReceiver: tailReceiver.url }));
      process.env.PAYBRIDGE_LOCAL_FILE = join(dir.dir, 'local.json');
      const { runCli } = await import('../../shared/cli/main.js');
      const run = async (argv: string[]) => {
        const out: string[] = [];
        const io = { out: (l: string) => out.push(l), err: (l: string) => out.push(l), progress: () => undefined, progressEnd: () => undefined, interactive: false, confirm: async () => false, clock: Date.now };
        const code = await runCli(argv, async () => { throw new Error('not used'); }, io);
        return { code, out: out.join('\n') };
      };
      await call(stack, 'POST', '/v1/cambio/payment-notices', notice('cli-1'));
      const got = await eventually(async () => r.got.find((e) => e.data.key === 'cli-1'));
      const tail = await run(['events', 'tail', '--count', '1', '--timeout', '20s']);
      expect(tail.code).toBe(0);
      expect(tail.out).toMatch(new RegExp(`signature ok .*payment.posted +cambio/cli-1 +seq 1 +posted +${got.id}`));
      const listed = await run(['events', 'list']);
      expect(listed.out).toContain(got.id);
      const shown = await eventually(async () => {
        const s = await run(['events', 'show', got.id]);
        return (s.out.match(/delivered/g) ?? []).length === 2 ? s : undefined;
      });
      expect(shown.out).toMatch(/204 +\d+ ms/);
      expect((await run(['events', 'resend', got.id])).out).toBe(`resent ${got.id} to 2 endpoint(s)`);
      await eventually(async () => r.got.filter((e) => e.id === got.id).length === 2);
      const recovered = await run(['events', 'recover', '--endpoint', made.body.id, '--since', '10m', '--timeout', '20s']);
      expect(recovered.out).toMatch(/1 of 1 events since .* queued again/);
      expect(recovered.out).toMatch(/0 still pending/);
      expect(r.got.filter((e) => e.id === got.id)).toHaveLength(3);
      await tailReceiver.close();
    } finally {
      if (prior === undefined) delete process.env.PAYBRIDGE_LOCAL_FILE;
      else process.env.PAYBRIDGE_LOCAL_FILE = prior;
      await r.close();
      await stack.close();
      dir.remove();
    }
  }, 90_000);
});

describe('a kill between the status write and the publish loses no event (issue 21)', () => {
  it('the event written with the status is delivered after a restart, once, with its id', async () => {
    const data = tempDir('paybridge-events-');
    const r = await receiver();
    const env = { LOG_LEVEL: 'silent', API_KEYS: 'pos=key-of-pos' };
    let stack: Stack | undefined;
    try {
      stack = await startStack({ port: 0, dataDir: data.dir, sweepIntervalMs: false, env, delivery: FAST, queue: { batchingWindowMs: 0 } });
      const made = await call(stack, 'POST', '/v1/event-endpoints', { url: r.url }, { 'x-api-key': 'key-of-pos' });
      r.secret = made.body.secret as string;
      // The relay is gone before the payment is posted: the status write holds the only copy of the event.
      await stack.events.relay.close();
      const posted = await call(stack, 'POST', '/v1/cambio/payment-notices', notice('kill-1'), { 'x-api-key': 'key-of-pos' });
      expect([201, 202]).toContain(posted.status);
      await eventually(async () => (await call(stack as Stack, 'GET', '/v1/payments/cambio/kill-1', undefined, { 'x-api-key': 'key-of-pos' })).body.status === 'posted');
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(r.got).toHaveLength(0);
      await stack.kill();
      stack = await startStack({ port: 0, dataDir: data.dir, sweepIntervalMs: false, env, delivery: FAST, queue: { batchingWindowMs: 0 } });
      const got = await eventually(async () => r.got.find((e) => e.data.key === 'kill-1'));
      expect(got).toMatchObject({ type: 'payment.posted', verified: true, data: { sequence: 1 } });
      // A third start hands on nothing again: the mark was cleared after the delivery was made.
      await stack.close();
      stack = await startStack({ port: 0, dataDir: data.dir, sweepIntervalMs: false, env, delivery: FAST, queue: { batchingWindowMs: 0 } });
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(new Set(r.got.map((e) => e.id)).size).toBe(1);
      expect(r.got.filter((e) => e.data.key === 'kill-1')).toHaveLength(1);
    } finally {
      await stack?.close();
      await r.close();
      data.remove();
    }
  }, 60_000);
});

describe('the local deliverer sends what the relay just made without reading it back (issue 23: DynamoDB requests per payment)', () => {
  it('delivers ten payments with no due Query, no delivery BatchGetItem and no endpoint read of its own per event', async () => {
    const seen: DynamoExchange[] = [];
    const stack = await testStack({ env: { API_KEYS: `${DEV_API_KEY},pos=key-of-pos` }, delivery: FAST, onDynamoRequest: (e) => seen.push(e) });
    const r = await receiver();
    try {
      const made = await call(stack, 'POST', '/v1/event-endpoints', { url: r.url }, { 'x-api-key': 'key-of-pos' });
      expect(made.status).toBe(201);
      // The endpoint's loop has read the index once (the start's kick and the one the endpoint write made).
      await new Promise((resolve) => setTimeout(resolve, 300));
      seen.length = 0;
      for (let i = 0; i < 10; i++) {
        expect([201, 202]).toContain((await call(stack, 'POST', '/v1/cambio/payment-notices', notice(`lean-${i}`), { 'x-api-key': 'key-of-pos' })).status);
        // One payment at a time, each delivered before the next: nothing batches them.
        await eventually(async () => r.got.find((e) => e.data.key === `lean-${i}`), 10_000, 5);
      }
      // The outcomes' writes follow the receiver's answers.
      await eventually(async () => (seen.filter((e) => e.operation === 'PutItem' && JSON.stringify(e.request).includes('"status":{"S":"delivered"}')).length >= 10 ? true : undefined), 5_000, 10);
      const body = (e: DynamoExchange) => JSON.stringify(e.request);
      const dueQueries = seen.filter((e) => e.operation === 'Query' && body(e).includes('"due#'));
      const deliveryReads = seen.filter((e) => e.operation === 'BatchGetItem' && body(e).includes('"delivery#'));
      const endpointReads = seen.filter((e) => e.operation === 'GetItem' && body(e).includes('"endpoint#'));
      const summary = JSON.stringify(seen.reduce<Record<string, number>>((acc, e) => ((acc[e.operation] = (acc[e.operation] ?? 0) + 1), acc), {}));
      // Before: two due Queries, a BatchGetItem and an endpoint read per event (40 in all). The 5 s poll may add one of each.
      expect(dueQueries.length, summary).toBeLessThanOrEqual(2);
      expect(deliveryReads.length, summary).toBeLessThanOrEqual(1);
      expect(endpointReads.length, summary).toBeLessThanOrEqual(2);
      expect(r.got.filter((e) => e.data.key?.toString().startsWith('lean-'))).toHaveLength(10);
      // Claim and status (2), the event kept, its delivery made and its mark cleared (3), the outcome (1); the
      // relay's 2 s poll adds five reads a pass. Before: 10.9 a payment.
      expect(seen.length / 10, summary).toBeLessThanOrEqual(8);
    } finally {
      await r.close();
      await stack.close();
    }
  });
});

describe('the local relay and a payment offered while its pass runs (issue 23: DynamoDB requests per payment)', () => {
  it('the poll in the same pass leaves it to the next pass, which has it in hand: no read of its event, one put, one clear', async () => {
    const stack = await testStack({ env: { API_KEYS: 'pos=key-of-pos' }, delivery: FAST });
    try {
      const store = stack.events.store;
      const calls: { op: string; id: string }[] = [];
      let slowFirst: (() => void) | undefined;
      const held = new Promise<void>((resolve) => (slowFirst = resolve));
      const put = store.putEvent.bind(store);
      const get = store.getEvent.bind(store);
      const clear = store.clearPending.bind(store);
      store.putEvent = async (e) => {
        calls.push({ op: 'put', id: e.event.data.key ?? '' });
        // The first payment's pass is held in its event write until the second payment has been offered.
        if (e.event.data.key === 'pass-1') await held;
        return put(e);
      };
      store.getEvent = async (id) => {
        const found = await get(id);
        calls.push({ op: 'get', id: found?.event.data.key ?? id });
        return found;
      };
      store.clearPending = async (pk, id) => {
        calls.push({ op: 'clear', id: pk.slice(pk.lastIndexOf('#') + 1) });
        return clear(pk, id);
      };
      const status = async (key: string) => (await call(stack, 'GET', `/v1/payments/cambio/${key}`, undefined, { 'x-api-key': 'key-of-pos' })).body.status;
      expect([201, 202]).toContain((await call(stack, 'POST', '/v1/cambio/payment-notices', notice('pass-1'), { 'x-api-key': 'key-of-pos' })).status);
      await eventually(async () => (calls.some((c) => c.op === 'put' && c.id === 'pass-1') ? true : undefined), 5_000, 10);
      expect([201, 202]).toContain((await call(stack, 'POST', '/v1/cambio/payment-notices', notice('pass-2'), { 'x-api-key': 'key-of-pos' })).status);
      await eventually(async () => ((await status('pass-2')) === 'posted' ? true : undefined), 5_000, 20);
      // The poll asks for a scan while the pass still runs: it runs in the same pass, after the offered records.
      stack.events.relay.kick();
      slowFirst?.();
      await eventually(async () => (calls.filter((c) => c.op === 'clear' && c.id === 'pass-2').length > 0 ? true : undefined), 5_000, 10);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const of2 = calls.filter((c) => c.id === 'pass-2').map((c) => c.op);
      expect(of2).toEqual(['put', 'clear']);
    } finally {
      await stack.close();
    }
  }, 20_000);
});
