import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeHandler } from '../../functions/event-delivery.js';
import { Deliverer } from '../../shared/events/deliver.js';
import { EventStore, type Endpoint } from '../../shared/events/store.js';
import { lambdaContext } from '../../shared/local/server.js';
import { makeDynamoClient } from '../../shared/store/client.js';
import type { Stack } from '../../shared/local/stack.js';
import { derivedExternalId } from '../../shared/systems/nif/index.js';
import { call, eventually, testStack } from '../helpers/stack.js';

/**
 * The adversarial review of events out (issue 21): each case here failed on main before its fix.
 * A receiver on loopback keeps every raw body it is sent.
 */
async function rawReceiver(): Promise<{ url: string; bodies: string[]; close(): Promise<void> }> {
  const bodies: string[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      bodies.push(Buffer.concat(chunks).toString('utf8'));
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    bodies,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const FAST = { schedule: [0, 150, 150], jitter: 0, timeoutMs: 1_500 };

describe('events out under review (issue 21)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await testStack({ env: { API_KEYS: 'pos=key-of-pos' }, delivery: FAST });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('a NIF payment keyed by its natural key (which holds the personId) is reported without the personId', async () => {
    const r = await rawReceiver();
    try {
      const made = await call(stack, 'POST', '/v1/event-endpoints', { url: r.url }, { 'x-api-key': 'key-of-pos' });
      expect(made.status).toBe(201);
      const personId = '8675682';
      const body = {
        amount: '450', comment: 'This was paid for club membership', isFamilyMember: 'true', isPaid: 'false', orgId: '7896', paidDate: '2015-05-08',
        paidToOrgId: '4568', paymentCategory: 'Club membership', paymentTypeId: 0, periodFrom: '2015-05-08', periodTo: '2015-06-08', personId,
      };
      const sent = await call(stack, 'POST', '/v1/nif/membership/payments', body, { 'x-api-key': 'key-of-pos', ClubId: '4568' });
      expect([201, 202]).toContain(sent.status);
      const natural = `natural:${personId}:7896:0:2015-05-08:2015-06-08`;
      const got = await eventually(async () => r.bodies.find((b) => b.includes('payment.posted')));
      expect(got).not.toContain(personId);
      // The caller can still tell which payment it was: the ExternalId paybridge sent NIF for it.
      expect(JSON.parse(got).data).toMatchObject({ system: 'nif-membership', status: 'posted', externalId: derivedExternalId('4568', natural) });
      const listed = await call(stack, 'GET', '/v1/events', undefined, { 'x-api-key': 'key-of-pos' });
      expect(JSON.stringify(listed.body)).not.toContain(personId);
      await call(stack, 'DELETE', `/v1/event-endpoints/${made.body.id}`, undefined, { 'x-api-key': 'key-of-pos' });
    } finally {
      await r.close();
    }
  }, 20_000);

  /** Holds the next read of endpoint `id` (after it is made) until `release` is called: a request that read before another's write. */
  function holdNextRead(id: string): { read: Promise<void>; release(): void; restore(): void } {
    const store = stack.events.store;
    const original = store.getEndpoint.bind(store);
    let release!: () => void;
    let reached!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const read = new Promise<void>((resolve) => (reached = resolve));
    let held = false;
    store.getEndpoint = async (asked: string) => {
      const found = await original(asked);
      if (asked === id && !held) {
        held = true;
        reached();
        await gate;
      }
      return found;
    };
    return { read, release, restore: () => void (store.getEndpoint = original) };
  }

  it('a PATCH that read the endpoint before a rotation does not drop the new secret', async () => {
    const pos = { 'x-api-key': 'key-of-pos' };
    const made = await call(stack, 'POST', '/v1/event-endpoints', { url: 'http://127.0.0.1:9/hook' }, pos);
    const hold = holdNextRead(made.body.id);
    try {
      const patch = call(stack, 'PATCH', `/v1/event-endpoints/${made.body.id}`, { description: 'renamed' }, pos);
      await hold.read;
      hold.restore();
      const rotated = await call(stack, 'POST', `/v1/event-endpoints/${made.body.id}/rotate-secret`, undefined, pos);
      expect(rotated.status).toBe(200);
      hold.release();
      expect((await patch).status).toBe(200);
      const now = await call(stack, 'GET', `/v1/event-endpoints/${made.body.id}`, undefined, pos);
      expect(now.body.description).toBe('renamed');
      // The secret the rotation showed (once) must sign: it is the one the caller now holds.
      expect(now.body.signingSecrets).toHaveLength(2);
      const stored = await stack.events.store.getEndpoint(made.body.id);
      expect(stored?.secrets.map((x) => x.secret)).toContain(rotated.body.secret);
    } finally {
      hold.release();
      hold.restore();
      await call(stack, 'DELETE', `/v1/event-endpoints/${made.body.id}`, undefined, pos);
    }
  });

  it('a PATCH that read the endpoint before the deliverer disabled it does not enable it again', async () => {
    const pos = { 'x-api-key': 'key-of-pos' };
    const made = await call(stack, 'POST', '/v1/event-endpoints', { url: 'http://127.0.0.1:9/hook' }, pos);
    const hold = holdNextRead(made.body.id);
    try {
      const patch = call(stack, 'PATCH', `/v1/event-endpoints/${made.body.id}`, { description: 'renamed' }, pos);
      await hold.read;
      hold.restore();
      // What the deliverer writes on a 410 or after 5 days failing (shared/events/deliver.ts, disable).
      await stack.events.store.patchEndpoint(made.body.id, { disabled: { at: new Date().toISOString(), reason: 'the endpoint answered 410 Gone' } });
      hold.release();
      expect((await patch).status).toBe(200);
      const now = await call(stack, 'GET', `/v1/event-endpoints/${made.body.id}`, undefined, pos);
      expect(now.body.description).toBe('renamed');
      expect(now.body.enabled).toBe(false);
    } finally {
      hold.release();
      hold.restore();
      await call(stack, 'DELETE', `/v1/event-endpoints/${made.body.id}`, undefined, pos);
    }
  });
});

describe('two AWS delivery functions at once (issue 21 review)', () => {
  it('send a due delivery once between them', async () => {
    // Only the AWS function sends here: the local stack's own deliverer is stopped.
    const stack = await testStack({ env: { API_KEYS: 'pos=key-of-pos' }, delivery: FAST });
    const hits: string[] = [];
    const server: Server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        hits.push(String(req.headers['webhook-id']));
        // Slow enough that the second function reads the delivery while the first is still sending it.
        setTimeout(() => res.writeHead(204).end(), 400);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      await stack.events.deliverer.close();
      const pos = { 'x-api-key': 'key-of-pos' };
      const made = await call(stack, 'POST', '/v1/event-endpoints', { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook` }, pos);
      const test = await call(stack, 'POST', `/v1/event-endpoints/${made.body.id}/test`, undefined, pos);
      expect(test.status).toBe(202);
      const handler = makeHandler(async () => stack.deps);
      const minute = { 'detail-type': 'Scheduled Event', source: 'aws.events', id: randomUUID(), time: new Date().toISOString(), region: 'eu-north-1', resources: [], account: '0', version: '0', detail: {} } as never;
      await Promise.all([0, 1].map(() => handler(minute, lambdaContext('eventDelivery', randomUUID(), 20_000) as never)));
      expect(hits.filter((h) => h === test.body.eventId)).toHaveLength(1);
      const d = await stack.events.store.getDelivery(made.body.id, test.body.eventId);
      expect(d).toMatchObject({ status: 'delivered', tries: 1 });
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await stack.close();
    }
  }, 20_000);
});

describe('a kill while an endpoint is being disabled (issue 21 review)', () => {
  /** The store as one process sees it, dying just after the write `dieAfter` picks has been made. */
  function dying(store: EventStore, dieAfter: (method: string, args: unknown[]) => boolean): EventStore {
    let dead = false;
    return new Proxy(store, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver) as unknown;
        if (typeof value !== 'function') return value;
        return async (...args: unknown[]) => {
          if (dead) throw new Error('killed');
          const out = await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          if (dieAfter(String(prop), args)) {
            dead = true;
            throw new Error('killed');
          }
          return out;
        };
      },
    });
  }

  it.each([
    ['the disable itself', (m: string, a: unknown[]) => m === 'patchEndpoint' && (a[1] as { disabled?: unknown }).disabled !== undefined],
    ['keeping the endpoint.disabled event', (m: string, a: unknown[]) => m === 'putEvent' && (a[0] as { event: { type: string } }).event.type === 'endpoint.disabled'],
  ])('loses no endpoint.disabled to the other endpoints when the process dies just after %s', async (_what, dieAfter) => {
    const stack = await testStack({ env: { API_KEYS: 'pos=key-of-pos' }, delivery: FAST });
    const got: { endpoint: string; type: string; id: string }[] = [];
    const server: Server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const e = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id: string; type: string };
        got.push({ endpoint: String(req.url), type: e.type, id: e.id });
        res.writeHead(req.url === '/gone' ? 410 : 204).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const settings = { ...FAST, schedule: [0, 50, 50] };
    try {
      await stack.events.deliverer.close();
      const pos = { 'x-api-key': 'key-of-pos' };
      const gone = await call(stack, 'POST', '/v1/event-endpoints', { url: `${base}/gone` }, pos);
      await call(stack, 'POST', '/v1/event-endpoints', { url: `${base}/other` }, pos);
      await call(stack, 'POST', `/v1/event-endpoints/${gone.body.id}/test`, undefined, pos);
      const callers = () => ['pos'];
      const first = new Deliverer(dying(stack.events.store, dieAfter), { log: stack.deps.log, policy: { allowLoopback: true }, callers, settings });
      await first.deliverDue(Date.now() + 10_000, [gone.body.id]).catch(() => undefined);
      await first.close();
      // The restarted process: whatever the first one left undone is done now.
      await new Promise((resolve) => setTimeout(resolve, 100));
      const second = new Deliverer(stack.events.store, { log: stack.deps.log, policy: { allowLoopback: true }, callers, settings });
      await second.deliverDue(Date.now() + 10_000);
      await eventually(async () => got.some((g) => g.endpoint === '/other'), 3_000).catch(() => undefined);
      await second.close();
      expect((await stack.events.store.getEndpoint(gone.body.id))?.disabled).toBeDefined();
      const told = got.filter((g) => g.endpoint === '/other');
      expect(told.map((g) => g.type)).toEqual(['endpoint.disabled']);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await stack.close();
    }
  }, 20_000);
});

describe('an endpoint changed while its deliveries are being sent (issue 21 review)', () => {
  it('sends nothing more to the old URL once the caller has moved the endpoint', async () => {
    const stack = await testStack({ env: { API_KEYS: 'pos=key-of-pos' }, delivery: FAST });
    const pos = { 'x-api-key': 'key-of-pos' };
    const got = { old: 0, moved: 0 };
    let endpointId = '';
    let movedUrl = '';
    const moved: Server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        got.moved++;
        res.writeHead(204).end();
      });
    });
    const old: Server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        got.old++;
        // The caller moves its endpoint (its old host is going away) while the first delivery is in flight.
        const move = got.old === 1 ? call(stack, 'PATCH', `/v1/event-endpoints/${endpointId}`, { url: movedUrl }, pos) : Promise.resolve(undefined);
        void move.then(() => res.writeHead(204).end());
      });
    });
    for (const s of [old, moved]) await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
    movedUrl = `http://127.0.0.1:${(moved.address() as AddressInfo).port}/hook`;
    try {
      await stack.events.deliverer.close();
      const made = await call(stack, 'POST', '/v1/event-endpoints', { url: `http://127.0.0.1:${(old.address() as AddressInfo).port}/hook` }, pos);
      endpointId = made.body.id;
      const ids = new Set<string>();
      // Bounded: three test events with distinct ids (one per millisecond).
      for (let i = 0; i < 20 && ids.size < 3; i++) {
        ids.add((await call(stack, 'POST', `/v1/event-endpoints/${endpointId}/test`, undefined, pos)).body.eventId as string);
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      expect(ids.size).toBe(3);
      const deliverer = new Deliverer(stack.events.store, { log: stack.deps.log, policy: { allowLoopback: true }, callers: () => ['pos'], settings: FAST });
      await deliverer.deliverDue(Date.now() + 10_000, [endpointId]);
      await deliverer.close();
      expect(got).toEqual({ old: 1, moved: 2 });
    } finally {
      for (const s of [old, moved]) {
        s.closeAllConnections();
        await new Promise<void>((resolve) => s.close(() => resolve()));
      }
      await stack.close();
    }
  }, 20_000);
});

describe('resending an event (issue 21 review)', () => {
  it('goes only to the endpoints that take its type', async () => {
    const stack = await testStack({ env: { API_KEYS: 'pos=key-of-pos' }, delivery: FAST });
    const pos = { 'x-api-key': 'key-of-pos' };
    const got: Record<string, string[]> = { all: [], failedOnly: [] };
    const server: Server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        got[String(req.url).slice(1)]?.push((JSON.parse(Buffer.concat(chunks).toString('utf8')) as { type: string }).type);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      await call(stack, 'POST', '/v1/event-endpoints', { url: `${base}/all` }, pos);
      await call(stack, 'POST', '/v1/event-endpoints', { url: `${base}/failedOnly`, eventTypes: ['payment.failed'] }, pos);
      const sent = await call(stack, 'POST', '/v1/cambio/payment-notices', { status: 'PAID', contactId: 'resend-types-1', paymentType: 'CARD' }, pos);
      expect([201, 202]).toContain(sent.status);
      await eventually(async () => got.all?.includes('payment.posted'));
      const listed = await call(stack, 'GET', '/v1/events', undefined, pos);
      const id = (listed.body.events as { id: string; type: string }[]).find((e) => e.type === 'payment.posted')?.id as string;
      const resent = await call(stack, 'POST', `/v1/events/${id}/resend`, undefined, pos);
      expect(resent.status).toBe(202);
      await eventually(async () => (got.all?.length ?? 0) >= 2);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(got).toEqual({ all: ['payment.posted', 'payment.posted'], failedOnly: [] });
      expect(resent.body.queued).toBe(1);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await stack.close();
    }
  }, 20_000);
});

/**
 * The AWS one-shot delivery (`Deliverer.deliverDue`) over what `run` writes for one endpoint of pos's on a raw
 * receiver, with the stack's own deliverer stopped first so that it sends nothing of it.
 */
async function oneShotDelivery(run: (ctx: { store: EventStore; endpointId: string; bodies: string[]; deliverDue: () => Promise<void> }) => Promise<void>): Promise<void> {
  const stack = await testStack({ env: { API_KEYS: 'pos=key-of-pos' }, delivery: FAST });
  const r = await rawReceiver();
  try {
    await stack.events.deliverer.close();
    const made = await call(stack, 'POST', '/v1/event-endpoints', { url: r.url }, { 'x-api-key': 'key-of-pos' });
    const store = stack.events.store;
    const deliverDue = async () => {
      const deliverer = new Deliverer(store, { log: stack.deps.log, policy: { allowLoopback: true }, callers: () => ['pos'], settings: FAST });
      await deliverer.deliverDue(Date.now() + 10_000, [made.body.id as string]);
      await deliverer.close();
    };
    await run({ store, endpointId: made.body.id as string, bodies: r.bodies, deliverDue });
  } finally {
    await r.close();
    await stack.close();
  }
}

describe('the AWS one-shot delivery with a backlog (review of 6ed7d13)', () => {
  it('takes the next batch after a full index page, even when the page holds an entry no longer pending (events-index lags the table)', async () => {
    await oneShotDelivery(async ({ store, endpointId, bodies, deliverDue }) => {
      const at = Date.now() - 60_000;
      const delivery = (n: number, status: 'pending' | 'delivered') => ({
        endpointId,
        eventId: `evt_backlog${n}`,
        caller: 'pos',
        event: { id: `evt_backlog${n}`, type: 'endpoint.test' as const, timestamp: new Date(at).toISOString(), data: { endpointId, message: 'backlog' } },
        status,
        tries: 0,
        nextAttemptAt: at + n,
        attempts: [],
        createdMs: at,
        updatedAt: new Date(at).toISOString(),
      });
      // A delivery another invocation has just sent, whose due entry events-index still shows (AWS's index is
      // eventually consistent): the table says delivered, the index still lists it first.
      const { PutCommand } = await import('@aws-sdk/lib-dynamodb');
      await store.doc.send(new PutCommand({ TableName: store.tableName, Item: { pk: `delivery#${endpointId}#evt_backlog0`, ...delivery(0, 'delivered'), eventsKey: `due#${endpointId}`, eventAt: at } }));
      // Bounded: 30 due behind it, more than one batch of 25.
      for (let n = 1; n <= 30; n++) expect(await store.createDelivery(delivery(n, 'pending'))).toBe(true);
      await deliverDue();
      expect(bodies).toHaveLength(30);
      expect(await store.nextDue(endpointId)).toBe(at);
    });
  }, 20_000);
});

describe('a delivery another AWS invocation has claimed, seen through a lagging events-index (issue 21 review)', () => {
  it('is not sent a second time: the table says when it is due, not the index entry', async () => {
    await oneShotDelivery(async ({ store, endpointId, bodies, deliverDue }) => {
      const at = Date.now() - 60_000;
      const claimedUntil = Date.now() + 45_000;
      // Claimed by another invocation (EventStore.claimDelivery: due again only at claimedUntil) and being sent
      // there; the index has not caught up and still lists it at its old due time.
      const { PutCommand } = await import('@aws-sdk/lib-dynamodb');
      const event = { id: 'evt_claimed1', type: 'endpoint.test', timestamp: new Date(at).toISOString(), data: { endpointId, message: 'claimed' } };
      await store.doc.send(
        new PutCommand({
          TableName: store.tableName,
          Item: { pk: `delivery#${endpointId}#evt_claimed1`, endpointId, eventId: 'evt_claimed1', caller: 'pos', event, status: 'pending', tries: 0, nextAttemptAt: claimedUntil, attempts: [], createdMs: at, updatedAt: new Date(at).toISOString(), eventsKey: `due#${endpointId}`, eventAt: at },
        }),
      );
      await deliverDue();
      expect(bodies).toHaveLength(0);
      expect(await store.getDelivery(endpointId, 'evt_claimed1')).toMatchObject({ status: 'pending', tries: 0, nextAttemptAt: claimedUntil });
    });
  }, 20_000);
});

describe('an endpoint written by another process (review of 6ed7d13)', () => {
  it('is heard by the next payment at once, though the relay keeps endpoint lists (serverless invoke local on the stack\'s dynalite)', async () => {
    const stack = await testStack({ env: { API_KEYS: 'pos=key-of-pos' }, delivery: FAST });
    const pos = { 'x-api-key': 'key-of-pos' };
    const kept = await rawReceiver();
    const other = await rawReceiver();
    const keysOf = (r: { bodies: string[] }) => r.bodies.map((b) => (JSON.parse(b) as { data: { key?: string } }).data.key);
    // Another process on the same tables (as `serverless invoke local -f eventEndpoints` is): its own client and store.
    const client = makeDynamoClient({ endpoint: stack.dynamoEndpoint, region: stack.deps.config.AWS_REGION });
    const elsewhere = new EventStore(client, stack.deps.config.TABLE_NAME);
    try {
      expect((await call(stack, 'POST', '/v1/event-endpoints', { url: kept.url }, pos)).status).toBe(201);
      // The relay reads pos's endpoints for this payment's event, and keeps the list.
      expect([201, 202]).toContain((await call(stack, 'POST', '/v1/cambio/payment-notices', { status: 'PAID', contactId: 'xproc-1', paymentType: 'CARD' }, pos)).status);
      await eventually(async () => keysOf(kept).includes('xproc-1'), 5_000, 10);
      const now = Date.now();
      const made: Endpoint = { id: 'ep_elsewhere1', caller: 'pos', url: other.url, eventTypes: [], secrets: [{ secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' }], createdAt: new Date(now).toISOString(), createdMs: now, updatedAt: new Date(now).toISOString() };
      expect(await elsewhere.putEndpoint(made, true)).toBe(true);
      expect([201, 202]).toContain((await call(stack, 'POST', '/v1/cambio/payment-notices', { status: 'PAID', contactId: 'xproc-2', paymentType: 'CARD' }, pos)).status);
      await eventually(async () => keysOf(kept).includes('xproc-2'), 5_000, 10);
      await eventually(async () => keysOf(other).includes('xproc-2'), 3_000, 10);
      // The other process narrows the endpoint to payment.failed: the next payment.posted is not its.
      expect(await elsewhere.putEndpoint({ ...made, version: 1, eventTypes: ['payment.failed'] }, false)).toBe(true);
      expect([201, 202]).toContain((await call(stack, 'POST', '/v1/cambio/payment-notices', { status: 'PAID', contactId: 'xproc-3', paymentType: 'CARD' }, pos)).status);
      await eventually(async () => keysOf(kept).includes('xproc-3'), 5_000, 10);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(keysOf(other)).toEqual(['xproc-2']);
    } finally {
      client.destroy();
      await kept.close();
      await other.close();
      await stack.close();
    }
  }, 20_000);
});

/** A receiver answering each request as `answer` says; keeps the webhook ids it got and when, in order. */
async function hooks(answer: (n: number) => { status: number; headers?: Record<string, string> } = () => ({ status: 204 })) {
  const hits: { id: string; at: number }[] = [];
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const a = answer(hits.length);
      hits.push({ id: String(req.headers['webhook-id']), at: Date.now() });
      res.writeHead(a.status, a.headers).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    hits,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A pending delivery of a test event to `endpointId`, due at `at`. */
const deliveryOf = (endpointId: string, name: string, at = Date.now()) => ({
  endpointId,
  eventId: `evt_${name}`,
  caller: 'pos',
  event: { id: `evt_${name}`, type: 'endpoint.test' as const, timestamp: new Date(at).toISOString(), data: { endpointId, message: name } },
  status: 'pending' as const,
  tries: 0,
  nextAttemptAt: at,
  attempts: [],
  createdMs: at,
  updatedAt: new Date(at).toISOString(),
});

/** A stack whose own deliverer is stopped, an endpoint of pos at `url`, and a deliverer of the test's own. */
async function withDeliverer(url: string, run: (ctx: { stack: Stack; store: EventStore; endpointId: string; deliverer: Deliverer; delivery: (n: number) => Parameters<EventStore['createDelivery']>[0] }) => Promise<void>, settings: typeof FAST = FAST, poll = false) {
  const stack = await testStack({ env: { API_KEYS: 'pos=key-of-pos' }, delivery: settings });
  let deliverer: Deliverer | undefined;
  try {
    await stack.events.deliverer.close();
    const made = await call(stack, 'POST', '/v1/event-endpoints', { url }, { 'x-api-key': 'key-of-pos' });
    expect(made.status).toBe(201);
    const endpointId = made.body.id as string;
    const now = Date.now();
    const delivery = (n: number) => deliveryOf(endpointId, `offered${n}`, now + n);
    deliverer = new Deliverer(stack.events.store, { log: stack.deps.log, policy: { allowLoopback: true }, callers: () => ['pos'], settings });
    // `poll`: the stack's own kind of deliverer, with its 5 s poll.
    if (poll) deliverer.start();
    await run({ stack, store: stack.events.store, endpointId, deliverer, delivery });
  } finally {
    await deliverer?.close();
    await stack.close();
  }
}

describe("the local deliverer's offered deliveries (issue 23 review)", () => {
  it('an offered copy of a delivery a scanning pass has sent already is not sent again', async () => {
    const r = await hooks();
    try {
      await withDeliverer(r.url, async ({ store, endpointId, deliverer, delivery }) => {
        const d = delivery(1);
        expect(await store.createDelivery(d)).toBe(true);
        // A scan (the poll) finds it before the relay's offer of it arrives.
        deliverer.kick(endpointId);
        await eventually(async () => ((await store.getDelivery(endpointId, d.eventId))?.status === 'delivered' ? true : undefined), 5_000, 10);
        deliverer.offer([d]);
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(r.hits.map((h) => h.id)).toEqual([d.eventId]);
      });
    } finally {
      await r.close();
    }
  }, 20_000);

  it('the next offered delivery goes to where another process has just moved the endpoint', async () => {
    const old = await hooks();
    const moved = await hooks();
    try {
      await withDeliverer(old.url, async ({ stack, store, endpointId, deliverer, delivery }) => {
        const first = delivery(1);
        expect(await store.createDelivery(first)).toBe(true);
        deliverer.offer([first]);
        await eventually(async () => (old.hits.length === 1 ? true : undefined), 5_000, 10);
        // Another process on the same dynalite (`serverless invoke local`): its own client and store.
        const client = makeDynamoClient({ endpoint: stack.dynamoEndpoint, region: stack.deps.config.AWS_REGION });
        try {
          const elsewhere = new EventStore(client, stack.deps.config.TABLE_NAME);
          const endpoint = (await elsewhere.getEndpoint(endpointId))!;
          expect(await elsewhere.putEndpoint({ ...endpoint, url: moved.url }, false)).toBe(true);
        } finally {
          client.destroy();
        }
        const second = delivery(2);
        expect(await store.createDelivery(second)).toBe(true);
        deliverer.offer([second]);
        await eventually(async () => (moved.hits.length === 1 ? true : undefined), 5_000, 10);
        expect(old.hits.map((h) => h.id)).toEqual([first.eventId]);
        expect(moved.hits.map((h) => h.id)).toEqual([second.eventId]);
      });
    } finally {
      await old.close();
      await moved.close();
    }
  }, 20_000);

  it('deliveries offered while the endpoint asked to slow down are sent after its pause, each once', async () => {
    const r = await hooks((n) => (n === 0 ? { status: 429, headers: { 'retry-after': '1' } } : { status: 204 }));
    try {
      await withDeliverer(r.url, async ({ store, endpointId, deliverer, delivery }) => {
        const ds = [delivery(1), delivery(2), delivery(3)];
        for (const d of ds) expect(await store.createDelivery(d)).toBe(true);
        const offeredAt = Date.now();
        deliverer.offer(ds);
        await eventually(async () => (r.hits.length === 4 ? true : undefined), 8_000, 20);
        await new Promise((resolve) => setTimeout(resolve, 300));
        // The first met the 429 and went again after the pause, with the two offered behind it; none twice.
        expect(r.hits[0]?.id).toBe(ds[0]!.eventId);
        expect(r.hits.slice(1).map((h) => h.id).sort()).toEqual(ds.map((d) => d.eventId));
        expect(Date.now() - offeredAt).toBeGreaterThanOrEqual(1_000);
        for (const d of ds) expect(await store.getDelivery(endpointId, d.eventId)).toMatchObject({ status: 'delivered' });
      });
    } finally {
      await r.close();
    }
  }, 20_000);

  it('forgets a deleted endpoint: its loop, its kept copy and the ids it sent are not held for the life of the process', async () => {
    const r = await hooks();
    try {
      await withDeliverer(r.url, async ({ stack, store, endpointId, deliverer, delivery }) => {
        const d = delivery(1);
        expect(await store.createDelivery(d)).toBe(true);
        deliverer.offer([d]);
        await eventually(async () => (r.hits.length === 1 ? true : undefined), 5_000, 10);
        expect(deliverer.endpointsTracked()).toBe(1);
        const gone = await call(stack, 'DELETE', `/v1/event-endpoints/${endpointId}`, undefined, { 'x-api-key': 'key-of-pos' });
        expect(gone.status).toBe(204);
        // The poll's kick (or a late offer) finds it gone: nothing of it is kept after that pass.
        deliverer.kick(endpointId);
        await eventually(async () => (deliverer.endpointsTracked() === 0 ? true : undefined), 5_000, 10);
      });
    } finally {
      await r.close();
    }
  }, 20_000);
});

describe('review of ac34295 (the local deliverer sends offered deliveries)', () => {
  it('an offered delivery is not sent to the URL another process has just moved the endpoint from (a stack given its DynamoDB)', async () => {
    const old = await hooks();
    const moved = await hooks();
    // A DynamoDB the stack is given (the benchmarks' way, StackOptions.dynamoEndpoint): another process's writes are not counted.
    const dynaliteModule = (await import('dynalite')).default;
    const db = dynaliteModule({ createTableMs: 0 });
    await new Promise<void>((resolve) => db.listen(0, '127.0.0.1', () => resolve()));
    const dynamoEndpoint = `http://127.0.0.1:${(db.address() as AddressInfo).port}`;
    const stack = await testStack({ dynamoEndpoint, env: { API_KEYS: 'pos=key-of-pos' }, delivery: FAST });
    const client = makeDynamoClient({ endpoint: dynamoEndpoint, region: stack.deps.config.AWS_REGION });
    try {
      const store = stack.events.store;
      const made = await call(stack, 'POST', '/v1/event-endpoints', { url: old.url }, { 'x-api-key': 'key-of-pos' });
      expect(made.status).toBe(201);
      const endpointId = made.body.id as string;
      const first = deliveryOf(endpointId, 'xmove1');
      expect(await store.createDelivery(first)).toBe(true);
      stack.events.deliverer.offer([first]);
      await eventually(async () => (old.hits.length === 1 ? true : undefined), 5_000, 10);
      // Another process (serverless invoke local -f eventEndpoints) moves the endpoint; its write is acknowledged.
      const elsewhere = new EventStore(client, stack.deps.config.TABLE_NAME);
      const endpoint = (await elsewhere.getEndpoint(endpointId))!;
      expect(await elsewhere.putEndpoint({ ...endpoint, url: moved.url }, false)).toBe(true);
      // The next payment's delivery, made and offered by the relay after that.
      const second = deliveryOf(endpointId, 'xmove2');
      expect(await store.createDelivery(second)).toBe(true);
      stack.events.deliverer.offer([second]);
      await eventually(async () => (old.hits.length + moved.hits.length === 2 ? true : undefined), 5_000, 10);
      expect(old.hits.map((h) => h.id)).toEqual([first.eventId]);
      expect(moved.hits.map((h) => h.id)).toEqual([second.eventId]);
    } finally {
      client.destroy();
      await stack.close();
      await new Promise<void>((resolve) => db.close(() => resolve()));
      await old.close();
      await moved.close();
    }
  }, 20_000);

  it('offered deliveries left over by a batch that only waited (each behind a pending earlier event) are sent at once', async () => {
    const r = await hooks();
    try {
      await withDeliverer(
        r.url,
        async ({ store, endpointId, deliverer }) => {
          // The loop's first pass (a scan) is behind it: one payment delivered.
          const warm = deliveryOf(endpointId, 'warm');
          expect(await store.createDelivery(warm)).toBe(true);
          deliverer.offer([warm]);
          await eventually(async () => (r.hits.length === 1 ? true : undefined), 5_000, 10);
          await new Promise((resolve) => setTimeout(resolve, 200));
          // Earlier events of 26 payments are still pending here (retries due in 30 s)...
          const now = Date.now();
          const behind = [];
          for (let i = 0; i < 26; i++) {
            const earlier = { ...deliveryOf(endpointId, `earlier${i}`, now - 60_000), tries: 1, nextAttemptAt: now + 30_000 };
            expect(await store.createDelivery(earlier)).toBe(true);
            const later = { ...deliveryOf(endpointId, `later${i}`, now), previousId: earlier.eventId };
            expect(await store.createDelivery(later)).toBe(true);
            behind.push(later);
          }
          // ...and their later events come out in one burst with a new payment's first event.
          const fresh = deliveryOf(endpointId, 'fresh', now + 1);
          expect(await store.createDelivery(fresh)).toBe(true);
          const offeredAt = Date.now();
          deliverer.offer([...behind, fresh]);
          const got = await eventually(async () => r.hits.find((h) => h.id === fresh.eventId), 8_000, 10);
          // Nothing holds it back: sent within moments, as a scanning pass would have.
          expect(got.at - offeredAt).toBeLessThan(2_000);
        },
        FAST,
        true,
      );
    } finally {
      await r.close();
    }
  }, 20_000);

  it('a delivery offered while the endpoint is paused is sent when the pause ends, not when an older retry is due', async () => {
    // The first try fails (500); the retry meets a 429 asking for 1 s; then all is well. The retry after that
    // is due 4 s on (the schedule's third step), the pause ends after 1 s.
    const r = await hooks((n) => (n === 0 ? { status: 500 } : n === 1 ? { status: 429, headers: { 'retry-after': '1' } } : { status: 204 }));
    try {
      await withDeliverer(
        r.url,
        async ({ store, endpointId, deliverer }) => {
          const first = deliveryOf(endpointId, 'paused0');
          expect(await store.createDelivery(first)).toBe(true);
          deliverer.offer([first]);
          // The retry met the 429: the endpoint is paused for 1 s, and the deliverer has set its timer.
          const paused = await eventually(async () => (await store.getEndpoint(endpointId))?.pausedUntil, 3_000, 5);
          expect(r.hits).toHaveLength(2);
          await new Promise((resolve) => setTimeout(resolve, 100));
          expect(Date.now()).toBeLessThan(paused);
          // A new payment's delivery, made and offered by the relay during the pause.
          const second = deliveryOf(endpointId, 'paused1');
          expect(await store.createDelivery(second)).toBe(true);
          deliverer.offer([second]);
          const got = await eventually(async () => r.hits.find((h) => h.id === second.eventId), 8_000, 10);
          // Due at once, held back only by the pause: sent when it ends (a timer), not 3 s later at the 429'd retry.
          expect(got.at - paused).toBeLessThan(1_000);
        },
        { schedule: [0, 150, 4_000], jitter: 0, timeoutMs: 1_500 },
        true,
      );
    } finally {
      await r.close();
    }
  }, 20_000);
});
