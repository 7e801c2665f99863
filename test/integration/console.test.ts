import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PaymentRecord } from '../../shared/core/types.js';
import type { Stack } from '../../shared/local/stack.js';
import { CONSOLE_CSP } from '../../shared/console/handler.js';
import { burstMeetingLimitOf10 } from '../helpers/limiter.js';
import { call, DEV_API_KEY, eventually, testStack } from '../helpers/stack.js';

/** Issue 22: the console's sign-in, session, CSRF and roles, its listing and actions, at the HTTP level. */

const OPERATOR_KEY = 'olga-operator-key-0123456789';
const VIEWER_KEY = 'vic-viewer-key-0123456789abc';

describe('the operator console API', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await testStack({ env: { OPERATOR_KEYS: `olga:operator=${OPERATOR_KEY},vic:viewer=${VIEWER_KEY}`, BRP_MAX_RPS: '25' } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  const url = (path: string) => `${stack.url}/console${path}`;

  async function signIn(key: string): Promise<{ cookie: string; csrf: string; setCookie: string }> {
    const res = await fetch(url('/api/login'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key }) });
    expect(res.status).toBe(200);
    const setCookie = res.headers.get('set-cookie') as string;
    return { cookie: setCookie.split(';')[0] as string, csrf: ((await res.json()) as { csrf: string }).csrf, setCookie };
  }

  const post = (path: string, s: { cookie: string; csrf?: string }, body: unknown, headers: Record<string, string> = {}) =>
    fetch(url(path), { method: 'POST', headers: { cookie: s.cookie, 'content-type': 'application/json', ...(s.csrf ? { 'x-csrf-token': s.csrf } : {}), ...headers }, body: JSON.stringify(body) });

  async function seed(key: string, status: PaymentRecord['status']): Promise<void> {
    const now = Date.now();
    await stack.deps.store.claim({
      pk: `cambio#default#${key}`, system: 'cambio', tenant: 'default', key, status, version: 1, revision: 1, budgetFrom: now, payloadHash: 'h',
      request: { status: 'PAID', contactId: key, paymentType: 'CARD' }, attempts: 1, failures: 1, nextAttemptAt: now, checkpoints: {},
      error: { kind: 'ambiguous', message: 'timed out after the body was sent' }, history: [{ at: new Date(now).toISOString(), event: 'received' }], correlationId: key,
      createdAt: new Date(now).toISOString(), createdMs: now, updatedAt: new Date(now).toISOString(), ttl: 0,
    });
  }

  it('serves its page under a strict Content Security Policy, and its files from the bundle', async () => {
    const page = await fetch(url(''));
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toBe(CONSOLE_CSP);
    expect(CONSOLE_CSP).toMatch(/script-src 'self'(;|$)/);
    const html = await page.text();
    expect(html).not.toMatch(/<script>|<style|style=|https?:\/\//);
    for (const name of ['app.js', 'app.css', 'uplot.js', 'uplot.css']) expect((await fetch(url(`/assets/${name}`))).status).toBe(200);
  });

  it('signs in operators only: a caller API key is refused, the session cookie is HttpOnly and SameSite=Strict', async () => {
    const refused = await fetch(url('/api/login'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: DEV_API_KEY }) });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('content-type')).toBe('application/problem+json');
    const { setCookie } = await signIn(OPERATOR_KEY);
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Strict/);
    expect(setCookie).toMatch(/Path=\/console/);
    expect((await fetch(url('/api/payments'))).status).toBe(401);
    expect((await fetch(url('/api/payments'), { headers: { cookie: 'pb_console=forged.value' } })).status).toBe(401);
  });

  it('refuses an action without the CSRF token, from another origin, or by a viewer', async () => {
    await seed('console-held-1', 'held');
    const op = await signIn(OPERATOR_KEY);
    const path = '/api/payments/cambio/console-held-1/actions/redrive';
    expect((await post(path, { cookie: op.cookie }, { reason: 'no token' })).status).toBe(403);
    expect((await post(path, op, { reason: 'cross site' }, { origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    const viewer = await signIn(VIEWER_KEY);
    const byViewer = await post(path, viewer, { reason: 'viewer' });
    expect(byViewer.status).toBe(403);
    expect(((await byViewer.json()) as { detail: string }).detail).toMatch(/viewer/);
    expect((await stack.deps.store.get('cambio#default#console-held-1'))?.status).toBe('held');
  });

  it('needs a reason (and for resolve, evidence), with field-level messages', async () => {
    await seed('console-unknown-1', 'unknown');
    const op = await signIn(OPERATOR_KEY);
    const res = await post('/api/payments/cambio/console-unknown-1/actions/resolve-posted', op, {});
    expect(res.status).toBe(400);
    const problem = (await res.json()) as { errors: { pointer: string }[] };
    expect(problem.errors.map((e) => e.pointer)).toEqual(['#/reason', '#/evidence']);
    const bad = await fetch(url('/api/payments?status=stuck&since=yesterday-ish'), { headers: { cookie: op.cookie } });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { errors: { pointer: string }[] }).errors.map((e) => e.pointer)).toEqual(['status', 'since']);
  });

  it('shows what an action will do, does it through the operator functions, and keeps it in the audit log', async () => {
    await seed('console-unknown-2', 'unknown');
    const op = await signIn(OPERATOR_KEY);
    const detail = (await (await fetch(url('/api/payments/cambio/console-unknown-2'), { headers: { cookie: op.cookie } })).json()) as {
      actions: Record<string, { allowed: boolean; mayHold: string }>;
    };
    expect(detail.actions['resolve-posted']).toMatchObject({ allowed: true });
    expect(detail.actions['resolve-posted']?.mayHold).toMatch(/^maybe revision 1 \(an answer at .* left it unconfirmed\)/);
    expect(detail.actions.redrive).toMatchObject({ allowed: false });
    const done = await post('/api/payments/cambio/console-unknown-2/actions/resolve-posted', op, { reason: 'checked Cambio by hand', evidence: 'contact shows PAID in the Cambio UI for 19121212-1212' });
    expect(done.status).toBe(200);
    expect((await stack.deps.store.get('cambio#default#console-unknown-2'))?.status).toBe('posted');
    const audit = (await (await fetch(url('/api/audit'), { headers: { cookie: op.cookie } })).json()) as { entries: { who: string; action: string; key: string; reason: string; ok: boolean }[] };
    expect(audit.entries[0]).toMatchObject({ who: 'olga', action: 'resolve-posted', key: 'console-unknown-2', reason: 'checked Cambio by hand', ok: true });
    // A person number an operator typed is not shown back.
    expect(JSON.stringify(audit.entries[0])).not.toContain('19121212-1212');
    const after = (await (await fetch(url('/api/payments/cambio/console-unknown-2'), { headers: { cookie: op.cookie } })).json()) as { timeline: { kind: string; event: string }[] };
    expect(after.timeline.filter((t) => t.kind === 'operator').map((t) => t.event)).toEqual(expect.arrayContaining(['resolved_posted', 'audit: resolve-posted']));
  });

  it('redrives a held payment to posted, and refuses (and audits) an action the payment does not allow', async () => {
    await seed('console-held-2', 'held');
    const op = await signIn(OPERATOR_KEY);
    expect((await post('/api/payments/cambio/console-held-2/actions/redrive', op, { reason: 'credentials fixed' })).status).toBe(200);
    await eventually(async () => (await stack.deps.store.get('cambio#default#console-held-2'))?.status === 'posted', 20_000);
    const again = await post('/api/payments/cambio/console-held-2/actions/redrive', op, { reason: 'twice' });
    expect(again.status).toBe(409);
    const audit = (await (await fetch(url('/api/audit?limit=1'), { headers: { cookie: op.cookie } })).json()) as { entries: { ok: boolean; result: string }[] };
    expect(audit.entries[0]).toMatchObject({ ok: false });
    expect(audit.entries[0]?.result).toMatch(/posted/);
  });

  it('previews a bulk redrive by filter with its count and each system\'s pace', async () => {
    await seed('console-bulk-1', 'held');
    await seed('console-bulk-2', 'held');
    const op = await signIn(OPERATOR_KEY);
    const res = await post('/api/bulk/preview', op, { action: 'redrive', filter: { system: 'cambio', prefix: 'console-bulk-' } });
    expect(res.status).toBe(200);
    const preview = (await res.json()) as { count: number; items: { key: string }[]; ratePerSecond: Record<string, number> };
    expect(preview.count).toBe(2);
    expect(preview.items.map((i) => i.key).sort()).toEqual(['console-bulk-1', 'console-bulk-2']);
    expect(preview.ratePerSecond.cambio).toBeGreaterThan(0);
  });

  it('shows each system\'s rate limit to a viewer: the configured ceiling, the rate paced now, what 429s taught and the next probe (issue 23)', async () => {
    // BRP configured at 25/s; a burst whose eleventh send meets a limit of 10 teaches 10 (no other case sends to BRP).
    await burstMeetingLimitOf10(stack.deps.pacer, 'brp', 25);

    const viewer = await signIn(VIEWER_KEY);
    const res = await fetch(url('/api/limits'), { headers: { cookie: viewer.cookie } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { at: string; limits: Record<string, Record<string, number | string>> };
    expect(Object.keys(body.limits).sort()).toEqual([...stack.deps.modules.keys()].sort());
    expect(body.limits.brp).toMatchObject({ configured: 25, pacedNow: 10, learnt: 10 });
    expect(Date.parse(body.limits.brp!.nextProbeAt as string)).toBeGreaterThan(Date.parse(body.at));
    expect(Date.parse(body.limits.brp!.lastLimitedAt as string)).toBeLessThanOrEqual(Date.now());
    // A system nothing was paced for: its ceiling, paced as is.
    expect(body.limits.kontantanalys).toMatchObject({ configured: stack.deps.systems('kontantanalys')!.maxPerSecond() });
    // Signed out: refused.
    expect((await fetch(url('/api/limits'))).status).toBe(401);
  });

  it('finds a key given in the percent-encoded form a status URL shows', async () => {
    await seed('a b/c', 'held');
    const op = await signIn(OPERATOR_KEY);
    const res = await fetch(url(`/api/payments/cambio/${encodeURIComponent(encodeURIComponent('a b/c'))}`), { headers: { cookie: op.cookie } });
    expect(res.status).toBe(200);
  });

  it("shows the payment's settlement events on its timeline, each with its deliveries, and no secret (issue 22 item 4)", async () => {
    const hits: number[] = [];
    const receiver = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        hits.push(hits.length);
        // The first answer fails: the delivery shows two tries and the last answer's status.
        res.writeHead(hits.length === 1 ? 500 : 204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    try {
      const made = await call(stack, 'POST', '/v1/event-endpoints', { url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook` });
      expect(made.status).toBe(201);
      const sent = await call(stack, 'POST', '/v1/cambio/payment-notices', { status: 'PAID', contactId: 'console-events-1', paymentType: 'CARD' });
      expect([201, 202]).toContain(sent.status);
      const op = await signIn(VIEWER_KEY);
      type Entry = { kind: string; at: string; event: string; settlement?: { id: string; type: string; sequence: number; time: string; deliveries: { endpointId: string; status: string; tries: number; lastAttempt?: { httpStatus: number; ms: number } }[] } };
      // The relay keeps the event and the deliverer sends it twice (500, then 204 after the 5 s step): read until delivered.
      const body = await eventually(async () => {
        const res = await fetch(url('/api/payments/cambio/console-events-1'), { headers: { cookie: op.cookie } });
        const text = await res.text();
        const entry = (JSON.parse(text) as { timeline: Entry[] }).timeline.find((t) => t.kind === 'event');
        return entry?.settlement?.deliveries[0]?.status === 'delivered' ? { text, entry } : undefined;
      }, 20_000);
      expect(body.entry.settlement).toMatchObject({ type: 'payment.posted', sequence: 1, id: expect.stringMatching(/^evt_/), deliveries: [{ endpointId: made.body.id, status: 'delivered', tries: 2, lastAttempt: { httpStatus: 204, ms: expect.any(Number) } }] });
      expect(body.entry.at).toBe(body.entry.settlement?.time);
      expect(body.entry.at).toMatch(/^\d{4}-\d\d-\d\dT/);
      expect(body.text).not.toContain('whsec_');
      expect(body.text).not.toContain(made.body.secret);
    } finally {
      receiver.closeAllConnections();
      await new Promise<void>((resolve) => receiver.close(() => resolve()));
    }
  }, 30_000);
});
