import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack } from '../../shared/local/stack.js';
import { BrpSandbox } from '../../shared/systems/brp/simulator.js';
import { CambioSandbox } from '../../shared/systems/cambio/simulator.js';
import { KontantanalysSandbox } from '../../shared/systems/kontantanalys/simulator.js';
import { NifSandbox } from '../../shared/systems/nif/simulator.js';
import { testStack } from '../helpers/stack.js';

/**
 * The sandboxes' limiters over loopback HTTP. Each sandbox's rate clock is frozen and moved by hand,
 * so "inside the window" and "a millisecond later" are exact whatever the machine's load.
 */

interface Answer {
  status: number;
  headers: Headers;
  body: any;
}

async function send(url: string, init: RequestInit = {}): Promise<Answer> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(5_000) });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // Not JSON (BRP's .xml, NIF's text errors): the text is the body.
  }
  return { status: res.status, headers: res.headers, body };
}

const json = (body: unknown): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const form = (fields: Record<string, string>): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() });

function frozenClock(start: number) {
  const clock = { now: start, read: () => clock.now };
  return clock;
}

const APIM_429 = (seconds: number) => ({ statusCode: 429, message: `Rate limit is exceeded. Try again in ${seconds} seconds.` });

describe('Cambio sandbox: the strict rolling window over HTTP', () => {
  const clock = frozenClock(1_000_000);
  const cambio = new CambioSandbox({ ratePerSecond: 3, rateClock: clock.read });
  let token = '';
  let n = 0;
  const notice = () =>
    send(`${cambio.url}/patients/paymentnotice/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'ocp-apim-subscription-key': cambio.options.subscriptionKey, authorization: `Bearer ${token}` },
      body: JSON.stringify({ status: 'PAID', contactId: `limiter-${n++}`, paymentType: 'CARD' }),
    });
  const stats = async () => (await send(`${cambio.url}/__sandbox/stats`)).body;
  const setLimiter = (body: unknown) => send(`${cambio.url}/__sandbox/limiter`, json(body));

  beforeAll(async () => {
    await cambio.start();
    const t = await send(cambio.tokenUrl, form({ grant_type: 'client_credentials', client_id: cambio.options.clientId, client_secret: cambio.options.clientSecret }));
    token = t.body.access_token;
  });
  afterAll(() => cambio.close());

  it('is the default, reported in stats', async () => {
    expect((await stats()).limiter).toEqual({ kind: 'rolling', ratePerSecond: 3, windowMs: 1000 });
    expect(cambio.options.limiter).toBe('rolling');
  });

  it('refuses the (R+1)-th call in a window with 429, Retry-After and APIM body, until the oldest call leaves it', async () => {
    const before = await stats();
    clock.now = 1_000_000;
    expect((await notice()).status).toBe(200);
    clock.now = 1_000_400;
    expect((await notice()).status).toBe(200);
    expect((await notice()).status).toBe(200);

    clock.now = 1_000_500;
    const refused = await notice();
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(refused.body).toEqual(APIM_429(1));
    // No remaining-calls headers unless asked for, as APIM sends none unless configured.
    expect(refused.headers.get('ratelimit-remaining')).toBeNull();

    // One ms before the first call leaves the window: still refused; refusals do not push it out.
    clock.now = 1_000_999;
    expect((await notice()).status).toBe(429);
    clock.now = 1_001_000;
    expect((await notice()).status).toBe(200);
    // The window (1_000_000, 1_001_000] holds 400, 400 and 1_000 again: full.
    expect((await notice()).status).toBe(429);

    const after = await stats();
    expect(after.rateLimited - before.rateLimited).toBe(3);
    expect(after.maxInAnyWindow).toBe(3);
    expect(Object.keys(after.applied)).toHaveLength(4);
  });

  it('switches at run time: fixed lets 2R through across a boundary, back to rolling counts them', async () => {
    // Three accepted late in one second...
    clock.now = 1_010_900;
    for (let i = 0; i < 3; i++) expect((await notice()).status).toBe(200);
    clock.now = 1_011_000;
    expect((await notice()).status).toBe(429);

    const switched = await setLimiter({ kind: 'fixed' });
    expect(switched.status).toBe(200);
    expect(switched.body).toEqual({ kind: 'fixed', ratePerSecond: 3, windowMs: 1000 });
    // ...and three more at the start of the next fixed window: six within 100 ms.
    for (let i = 0; i < 3; i++) expect((await notice()).status).toBe(200);
    const fourth = await notice();
    expect(fourth.status).toBe(429);
    expect(fourth.headers.get('retry-after')).toBe('1');
    expect(await stats()).toMatchObject({ limiter: { kind: 'fixed', ratePerSecond: 3 }, maxInAnyWindow: 6 });

    // Back to rolling at 10/s: the six just accepted still count, so four more and no fifth.
    expect((await setLimiter({ kind: 'rolling', ratePerSecond: 10 })).body).toEqual({ kind: 'rolling', ratePerSecond: 10, windowMs: 1000 });
    expect(cambio.options).toMatchObject({ limiter: 'rolling', ratePerSecond: 10 });
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push((await notice()).status);
    expect(answers).toEqual([200, 200, 200, 200, 429]);

    // A new bucket starts full: two at once, then it waits for a refill.
    expect((await setLimiter({ kind: 'bucket', ratePerSecond: 2 })).status).toBe(200);
    expect([(await notice()).status, (await notice()).status, (await notice()).status]).toEqual([200, 200, 429]);
    cambio.setLimiter('rolling', 3);
  });

  it.each<[unknown, RegExp]>([
    [{ kind: 'sliding', ratePerSecond: 10 }, /unknown limiter kind "sliding"; known: rolling, fixed, bucket/],
    [{ ratePerSecond: 10 }, /kind is required/],
    [{ kind: 'rolling', ratePerSecond: 0 }, /ratePerSecond must be a positive number/],
    [{ kind: 'rolling', ratePerSecond: 'fast' }, /ratePerSecond must be a positive number/],
    [{ kind: 'fixed', ratePerSecond: 2.5 }, /whole number/],
  ])('POST /__sandbox/limiter %j → 400', async (body, message) => {
    const before = (await stats()).limiter;
    const answer = await setLimiter(body);
    expect(answer.status).toBe(400);
    expect(answer.body.message).toMatch(message);
    expect((await stats()).limiter).toEqual(before);
  });

  it('POST /__sandbox/limiter with a body that is not JSON → 400', async () => {
    const answer = await send(`${cambio.url}/__sandbox/limiter`, { method: 'POST', body: 'kind=rolling' });
    expect(answer.status).toBe(400);
    expect(answer.body.message).toMatch(/must be JSON/);
  });

  it('/__sandbox/reset clears the peak too', async () => {
    expect((await send(`${cambio.url}/__sandbox/reset`, { method: 'POST' })).status).toBe(204);
    expect(await stats()).toMatchObject({ rateLimited: 0, maxInAnyWindow: 0, applied: {} });
  });
});

describe('Cambio sandbox on the real clock', () => {
  const cambio = new CambioSandbox({ ratePerSecond: 5 });
  beforeAll(() => cambio.start());
  afterAll(() => cambio.close());

  it('a burst of 30 concurrent notices: never more than R accepted in any second, the rest 429 with Retry-After', async () => {
    const t = await send(cambio.tokenUrl, form({ grant_type: 'client_credentials', client_id: cambio.options.clientId, client_secret: cambio.options.clientSecret }));
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        send(`${cambio.url}/patients/paymentnotice/`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'ocp-apim-subscription-key': cambio.options.subscriptionKey, authorization: `Bearer ${t.body.access_token}` },
          body: JSON.stringify({ status: 'PAID', contactId: `burst-${i}`, paymentType: 'CASH' }),
        }),
      ),
    );
    const accepted = answers.filter((a) => a.status === 200).length;
    const refused = answers.filter((a) => a.status === 429);
    expect(accepted + refused.length).toBe(30);
    expect(accepted).toBeGreaterThanOrEqual(5);
    for (const r of refused) expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // Whatever the machine's load spread the burst over, what got through respects the window.
    expect(cambio.stats.maxInAnyWindow).toBeLessThanOrEqual(5);
    expect(cambio.stats.rateLimited).toBe(refused.length);
  });
});

describe('NIF sandbox: both generations share the limit and answer as APIM', () => {
  const clock = frozenClock(5_000_000);
  const nif = new NifSandbox({ ratePerSecond: 2, rateLimitHeaders: true, rateClock: clock.read });
  let bearer = '';
  const gen1 = () =>
    send(`${nif.url}/api/v1/membership/Addpaymentdetail`, {
      ...json({}),
      headers: { 'content-type': 'application/json', 'ocp-apim-subscription-key': nif.options.subscriptionKey, clubid: '4568', authorization: nif.options.clubTokens['4568'] as string },
    });
  const gen2 = () => send(`${nif.url}/api/v1/payment/Addpaymentdetail`, { ...json({}), headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` } });

  beforeAll(async () => {
    await nif.start();
    bearer = (await send(nif.tokenUrl, form({ grant_type: 'client_credentials', client_id: nif.options.clientId, client_secret: nif.options.clientSecret }))).body.access_token;
  });
  afterAll(() => nif.close());

  it('counts remaining calls down in the opt-in headers, then refuses with Retry-After and the APIM body', async () => {
    // The empty bodies fail NIF's own checks (400 code 3009) after passing the gateway: they count.
    const first = await gen1();
    expect(first.status).toBe(400);
    expect([first.headers.get('ratelimit-remaining'), first.headers.get('ratelimit-limit')]).toEqual(['1', '2']);
    clock.now += 250;
    const second = await gen2();
    expect(second.status).toBe(400);
    expect(second.headers.get('ratelimit-remaining')).toBe('0');

    clock.now += 250;
    for (const refused of [await gen1(), await gen2()]) {
      expect(refused.status).toBe(429);
      expect(refused.headers.get('retry-after')).toBe('1');
      expect(refused.headers.get('ratelimit-remaining')).toBe('0');
      expect(refused.body).toEqual(APIM_429(1));
    }
    const stats = (await send(`${nif.url}/__sandbox/stats`)).body;
    expect(stats).toMatchObject({ rateLimited: 2, maxInAnyWindow: 2, limiter: { kind: 'rolling', ratePerSecond: 2, windowMs: 1000 } });

    clock.now += 500;
    expect((await gen2()).status).toBe(400);
  });

  it('an injected 429 states the fault wait in both header and body', async () => {
    nif.faults.push('429');
    const refused = await gen2();
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe(String(nif.options.faultWaitSeconds));
    expect(refused.body).toEqual(APIM_429(nif.options.faultWaitSeconds));
  });

  it('the control route switches it too', async () => {
    const answer = await send(`${nif.url}/__sandbox/limiter`, json({ kind: 'bucket', ratePerSecond: 4 }));
    expect(answer.body).toEqual({ kind: 'bucket', ratePerSecond: 4, windowMs: 1000 });
    expect(nif.options).toMatchObject({ limiter: 'bucket', ratePerSecond: 4 });
  });
});

describe('BRP and Kontantanalys sandboxes keep their own 429 shapes, with Retry-After', () => {
  const clock = frozenClock(9_000_000);
  const brp = new BrpSandbox({ ratePerSecond: 1, rateClock: clock.read });
  const ka = new KontantanalysSandbox({ ratePerSecond: 1, seededProviders: 1, rateClock: clock.read });
  let kaToken = '';

  beforeAll(async () => {
    await Promise.all([brp.start(), ka.start()]);
    kaToken = (await send(`${ka.url}Token`, form({ grant_type: 'password', username: ka.options.username, password: ka.options.password }))).body.access_token;
  });
  afterAll(() => Promise.all([brp.close(), ka.close()]));

  it('BRP: {errors: [TOO_MANY_REQUESTS]} with Retry-After', async () => {
    const getOrder = () => send(`${brp.url}orders/1.json?apikey=${brp.options.apiKey}`);
    expect((await getOrder()).status).toBe(404);
    clock.now += 300;
    const refused = await getOrder();
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(refused.body).toEqual({ errors: [{ code: 'TOO_MANY_REQUESTS', message: 'För många anrop', debuginfo: '' }] });
    const base = brp.url.replace(/\/brponline\/api\/ver2\/$/, '');
    expect((await send(`${base}/__sandbox/stats`)).body).toMatchObject({ rateLimited: 1, maxInAnyWindow: 1, limiter: { kind: 'rolling', ratePerSecond: 1 } });
    // Under the API's base URL too (what .data/local.json records for BRP).
    expect((await send(`${brp.url}__sandbox/limiter`, json({ kind: 'fixed', ratePerSecond: 5 }))).body).toEqual({ kind: 'fixed', ratePerSecond: 5, windowMs: 1000 });
    expect((await send(`${base}/__sandbox/limiter`, json({ kind: 'token-bucket' }))).status).toBe(400);
  });

  it('Kontantanalys: {errors: ["Too many requests"]} with Retry-After', async () => {
    const getProvider = () => send(`${ka.url}api/providers/1`, { headers: { authorization: `Bearer ${kaToken}` } });
    expect((await getProvider()).status).toBe(200);
    clock.now += 999;
    const refused = await getProvider();
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(refused.body).toEqual({ errors: ['Too many requests'] });
    clock.now += 1;
    expect((await getProvider()).status).toBe(200);
    // Its routes sit under /test/ like the rest of the test instance; the stripped path answers too.
    expect((await send(`${ka.url}__sandbox/stats`)).body).toMatchObject({ rateLimited: 1, maxInAnyWindow: 1, limiter: { kind: 'rolling', ratePerSecond: 1 } });
    expect((await send(`${ka.url}__sandbox/limiter`, json({ kind: 'bucket' }))).body).toEqual({ kind: 'bucket', ratePerSecond: 1, windowMs: 1000 });
    expect(ka.options.limiter).toBe('bucket');
  });
});

describe('local stack: SANDBOX_<NAME>_LIMITER', () => {
  it('picks each sandbox its limiter; rolling where unset', async () => {
    const stack = await testStack({ env: { SANDBOX_CAMBIO_LIMITER: 'fixed', SANDBOX_NIF_LIMITER: 'bucket', SANDBOX_BRP_LIMITER: 'rolling', SANDBOX_NIF_RPS: '7' }, kontantanalys: { seededProviders: 1 }, kontantanalysSyncIntervalMs: false });
    try {
      expect([stack.cambio?.options.limiter, stack.nif?.options.limiter, stack.brp?.options.limiter, stack.kontantanalys?.options.limiter]).toEqual(['fixed', 'bucket', 'rolling', 'rolling']);
      expect((await send(`${stack.nif!.url}/__sandbox/stats`)).body.limiter).toEqual({ kind: 'bucket', ratePerSecond: 7, windowMs: 1000 });
    } finally {
      await stack.close();
    }
  });

  it('refuses an unknown kind at start, naming the variable', async () => {
    await expect(startStack({ port: 0, sweepIntervalMs: false, kontantanalysSyncIntervalMs: false, env: { LOG_LEVEL: 'silent', SANDBOX_BRP_LIMITER: 'sliding' } })).rejects.toThrow(
      /SANDBOX_BRP_LIMITER: unknown limiter kind "sliding"; known: rolling, fixed, bucket/,
    );
  });
});
