import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliContext } from '../../shared/cli/context.js';
import { runCli, UsageError, type Io } from '../../shared/cli/main.js';
import { recordPk, type PaymentRecord, type Status } from '../../shared/core/types.js';
import { DynamoLimiterStore, makeDynamoClient } from '../../shared/store/dynamo.js';
import { DEV_WEBHOOK_SECRET, type Stack } from '../../shared/local/stack.js';
import { burstMeetingLimitOf10 } from '../helpers/limiter.js';
import { call, DEV_API_KEY, eventually, statusOf, testStack, waitForStatus } from '../helpers/stack.js';

const ROUTE = '/v1/cambio/payment-notices';
const notice = (contactId: string) => ({ status: 'PAID', contactId, paymentType: 'CARD' });

describe('the paybridge command against a local stack', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await testStack({ cambio: { ratePerSecond: 1000 }, settings: { leaseMs: 300 }, queue: { visibilityTimeoutMs: 20, maxReceiveCount: 2 } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  /** Runs one command; `answer` is what a person at a terminal would say, `interactive: false` is a pipe or CI. */
  async function run(argv: string[], opts: { answer?: boolean; interactive?: boolean } = {}) {
    const out: string[] = [];
    const err: string[] = [];
    const progress: string[] = [];
    const asked: string[] = [];
    const io: Io = {
      out: (l) => out.push(l),
      err: (l) => err.push(l),
      progress: (l) => progress.push(l),
      progressEnd: () => progress.push('<end>'),
      interactive: opts.interactive ?? true,
      confirm: async (q) => {
        asked.push(q);
        return opts.answer ?? false;
      },
      clock: Date.now,
    };
    const ctx = async (): Promise<CliContext> => ({
      where: 'test stack',
      store: stack.deps.store,
      queue: stack.queue,
      fence: () => stack.deps.pacer.mintFence(),
      limiter: new DynamoLimiterStore(makeDynamoClient({ endpoint: stack.dynamoEndpoint }), stack.deps.config.TABLE_NAME),
      deadLetters: { count: async () => stack.queue.deadLetters.length, redrive: async (p) => { const n = stack.queue.redriveDeadLetters(); p(n); return n; } },
      local: { apiUrl: stack.url, apiKey: DEV_API_KEY, sandboxes: { cambio: stack.cambio?.url } },
    });
    const code = await runCli(argv, ctx, io);
    return { code, out: out.join('\n'), err: err.join('\n'), progress, asked };
  }

  /** A record as the engine leaves it, written straight to the store (statuses the sandbox cannot easily produce). */
  let seededAt = 0;
  async function seed(key: string, status: Status, extra: Partial<PaymentRecord> = {}) {
    // Strictly increasing creation times, so "newest first" has one right answer.
    const now = (seededAt = Math.max(Date.now(), seededAt + 1));
    await stack.deps.store.claim({
      pk: `cambio#default#${key}`, system: 'cambio', tenant: 'default', key, status, version: 1, revision: 1, budgetFrom: now, payloadHash: 'h',
      request: notice(key), attempts: 1, failures: 1, nextAttemptAt: now, checkpoints: {},
      error: { kind: 'ambiguous', message: 'a worker died mid-attempt' }, history: [{ at: new Date(now).toISOString(), event: 'received' }], correlationId: key,
      createdAt: new Date(now).toISOString(), createdMs: now, updatedAt: new Date(now).toISOString(), ttl: 0, ...extra,
    });
  }

  it('lists held payments in a table and shows one, without its personal data', async () => {
    stack.cambio!.faults.push('403', '403');
    await call(stack, 'POST', ROUTE, notice('cli-held'), { patient: '191212121212' });
    // Held by the in-process attempt, or a moment later by the worker's when a busy machine queued it.
    await waitForStatus(stack, 'cambio', 'cli-held', ['held']);
    const list = await run(['payments', 'list', '--status', 'held', '--system', 'cambio']);
    expect(list.code).toBe(0);
    expect(list.out).toMatch(/1 payment on test stack, newest first \(held, cambio only\)/);
    expect(list.out).toMatch(/^SYSTEM\s+KEY\s+STATUS\s+REV\s+ATTEMPTS\s+CREATED\s+UPDATED\s+LAST ERROR$/m);
    expect(list.out).toMatch(/cambio\s+cli-held\s+held\s+1\s+1\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+(just now|\d+ s ago)\s+Insufficient scope\./);
    expect(list.out).not.toContain('more:');

    const show = await run(['payments', 'show', 'cambio', 'cli-held']);
    expect(show.code).toBe(0);
    expect(show.out).toMatch(/^cambio cli-held: held$/m);
    expect(show.out).toMatch(/^ {2}error\s+auth, HTTP 403: Insufficient scope\.$/m);
    expect(show.out).toMatch(/^ {2}patient\s+provided \(not shown\)$/m);
    expect(show.out).toMatch(/^history$/m);
    expect(show.out).toMatch(/^ {2}\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+\S.*\s+held\s+credentials or scope: Insufficient scope\.$/m);
    expect(show.out).not.toContain('191212121212');
    expect(show.out).not.toMatch(/"createdMs"|"budgetFrom"|\b1\d{12}\b/);

    const json = JSON.parse((await run(['payments', 'show', 'cambio', 'cli-held', '--json'])).out);
    expect(json).toMatchObject({ system: 'cambio', key: 'cli-held', status: 'held', revision: 1, request: { patient: 'provided (not shown)' }, statusUrl: '/v1/payments/cambio/cli-held' });
    expect(JSON.stringify(json)).not.toContain('191212121212');
    expect((await run(['payments', 'list', '--status', 'held', '--since', '1m'])).out).toContain('cli-held');
    expect((await run(['payments', 'list', '--status', 'held', '--since', '2099-01-01'])).out).toContain('no payments on test stack');
  });

  it('shows a NIF payment with the person id hidden in the request, the downstream\'s answer and its messages', async () => {
    const year = new Date().getFullYear();
    const payment = {
      amount: '450', externalId: 'cli-nif-1', isPaid: 'true', orgId: '4568', paidDate: `${year}-05-08`, paidToOrgId: '4568', paymentCategory: 'Club membership',
      paymentTypeId: 0, periodFrom: `${year}-05-08`, periodTo: `${year}-06-08`, personId: '8675682', comment: 'for person 8675682',
    };
    const posted = await call(stack, 'POST', '/v1/nif/membership/payments', payment, { ClubId: '4568' });
    // 201 when sent in process; a busy machine queues the first attempt (202): wait for it to post.
    expect([201, 202]).toContain(posted.status);
    await waitForStatus(stack, 'nif-membership', '4568:cli-nif-1', ['posted']);
    // The sandbox's answer names the person ("Payment details added for membership of 8675682 ..."), and
    // the record keeps it as it came: what shows it must hide it (as a keyed ref, or [hidden]).
    const stored = await stack.deps.store.get('nif-membership#4568#4568:cli-nif-1');
    expect(JSON.stringify(stored?.result)).toContain('8675682');
    for (const argv of [['payments', 'show', 'nif-membership', '4568:cli-nif-1'], ['payments', 'show', 'nif-membership', '4568:cli-nif-1', '--json']]) {
      const shown = await run(argv);
      expect(shown.code).toBe(0);
      expect(shown.out).not.toContain('8675682');
      expect(shown.out).toMatch(/\[hidden\]|ref:[0-9a-f]{16}/);
      expect(shown.out).toContain('4568');
    }
    const human = (await run(['payments', 'show', 'nif-membership', '4568:cli-nif-1'])).out;
    expect(human).toMatch(/^ {2}response\s+\{"message":"Payment details added for membership of (\[hidden\]|ref:[0-9a-f]{16})/m);
    expect(human).toMatch(/^ {2}personId\s+(\[hidden\]|ref:[0-9a-f]{16})$/m);
  });

  it('lists every status by default, newest first, a page at a time with a cursor hint', async () => {
    await seed('cli-page-a', 'unknown');
    await seed('cli-page-b', 'failed', { error: { kind: 'rejected', code: 'ERROR', message: 'Kontakten hittades inte i journalen för denna vårdenhet och kan därför inte registreras' } });
    await seed('cli-page-c', 'held');
    const all = await run(['payments', 'list']);
    expect(all.out).toMatch(/newest first \(all statuses\)/);
    const keys = [...all.out.matchAll(/^cambio\s+(cli-\S+)/gm)].map((m) => m[1]);
    expect(keys.slice(0, 3)).toEqual(['cli-page-c', 'cli-page-b', 'cli-page-a']);
    expect(keys).toContain('cli-held');
    // LAST ERROR is cut at a word boundary and marked.
    expect(all.out).toMatch(/cli-page-b\s+failed.*  ERROR: Kontakten hittades inte i journalen för denna…$/m);

    const first = await run(['payments', 'list', '--limit', '2']);
    expect([...first.out.matchAll(/^cambio\s+(cli-\S+)/gm)].map((m) => m[1])).toEqual(['cli-page-c', 'cli-page-b']);
    const hint = /^more: --cursor (\S+)$/m.exec(first.out);
    expect(hint).not.toBeNull();
    const second = await run(['payments', 'list', '--limit', '2', '--cursor', hint![1]!]);
    expect([...second.out.matchAll(/^\w[\w-]*\s+(\S+)\s+(posted|retrying|reconciling|unknown|held|failed)/gm)].map((m) => m[1])[0]).toBe('cli-page-a');
    await expect(run(['payments', 'list', '--cursor', hint![1]!, '--status', 'held'])).rejects.toThrow(/--cursor carries the filters/);

    const filtered = await run(['payments', 'list', '--status', 'held,unknown', '--json']);
    const parsed = JSON.parse(filtered.out) as { where: string; payments: { key: string; status: string; createdAt: string }[]; cursor?: string };
    expect(parsed.where).toBe('test stack');
    expect(new Set(parsed.payments.map((p) => p.status))).toEqual(new Set(['held', 'unknown']));
    expect(parsed.payments.map((p) => p.key)).toEqual(expect.arrayContaining(['cli-page-a', 'cli-page-c', 'cli-held']));
    expect(parsed.payments[0]).toMatchObject({ system: 'cambio', key: 'cli-page-c', status: 'held', revision: 1, attempts: 1, error: { kind: 'ambiguous' } });
    expect(parsed.cursor).toBeUndefined();
    const sameAsRepeated = JSON.parse((await run(['payments', 'list', '--status', 'held', '--status', 'unknown', '--json'])).out);
    expect(sameAsRepeated.payments).toEqual(parsed.payments);
    const paged = JSON.parse((await run(['payments', 'list', '--json', '--limit', '1'])).out);
    expect(paged.payments).toHaveLength(1);
    expect(typeof paged.cursor).toBe('string');
  });

  it('shows the schedule of a payment still being retried: next try, failures in a row, budget left', async () => {
    const now = Date.now();
    await seed('cli-retrying', 'retrying', {
      attempts: 3, failures: 2, budgetFrom: now - 3_600_000, nextAttemptAt: now + 125_000,
      error: { kind: 'retryable', httpStatus: 503, message: 'Service Unavailable' },
    });
    const shown = await run(['payments', 'show', 'cambio', 'cli-retrying']);
    expect(shown.out).toMatch(/^cambio cli-retrying: retrying$/m);
    expect(shown.out).toMatch(/^ {2}attempts\s+3$/m);
    expect(shown.out).toMatch(/^ {2}next try\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(in 2 min\)$/m);
    expect(shown.out).toMatch(/^ {2}failed in a row\s+2$/m);
    // The default budget of 72 h, an hour of it spent.
    expect(shown.out).toMatch(/^ {2}budget left\s+(2 d 22 h|2 d 23 h) \(until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)$/m);
    expect(shown.out).toMatch(/^ {2}error\s+retryable, HTTP 503: Service Unavailable$/m);
    const json = JSON.parse((await run(['payments', 'show', 'cambio', 'cli-retrying', '--json'])).out);
    expect(json.schedule).toMatchObject({ tries: 3, failuresInARow: 2, nextAttemptAt: new Date(now + 125_000).toISOString() });
    expect(json.schedule.budgetLeftSeconds).toBeGreaterThan(70 * 3600);
    expect(json.schedule.budgetLeftSeconds).toBeLessThanOrEqual(71 * 3600);
    // A settled payment has no schedule.
    expect((await run(['payments', 'show', 'cambio', 'cli-held'])).out).not.toMatch(/next try|budget left/);
  });

  it('redrive asks first, then sends held payments again and reports', async () => {
    const asked = await run(['redrive', '--system', 'cambio']);
    expect(asked.code).toBe(1);
    expect(asked.asked).toHaveLength(1);
    expect(asked.err).toContain('nothing redriven');
    expect((await statusOf(stack, 'cambio', 'cli-held')).status).toBe('held');
    const done = await run(['redrive', '--yes', '--by', 'ops-anna', '--system', 'cambio']);
    expect(done.code).toBe(0);
    expect(done.out).toContain('redriven: 2 held payments, 0 dead letters; refused: 0');
    expect(done.progress).toContain('held  [##############################] 2/2');
    const rec = await waitForStatus(stack, 'cambio', 'cli-held', ['posted']);
    expect(rec.history.map((h: { event: string }) => h.event)).toContain('redriven');
    expect(stack.cambio!.stats.applied['cli-held']).toBe(1);
  });

  it('redrive also moves dead-lettered messages back', async () => {
    const now = Date.now();
    // A message no worker can ever read fails every receive and ends in the dead-letter list.
    stack.queue.queue('cambio').send(`garbage ${now}`, 0);
    await stack.queue.idle(5_000);
    expect(stack.queue.deadLetters).toHaveLength(1);
    const done = await run(['redrive', '--yes', '--json']);
    expect(JSON.parse(done.out)).toMatchObject({ deadLetters: 1, moved: 1, refused: [] });
  });

  it('without a terminal, a confirmation is refused naming --yes, and nothing is done', async () => {
    await seed('cli-pipe', 'failed', { error: { kind: 'rejected', message: 'no' } });
    const piped = await run(['repost', 'cambio', 'cli-pipe', '--evidence', 'corrected in Cambio'], { interactive: false, answer: true });
    expect(piped.code).toBe(1);
    expect(piped.asked).toEqual([]);
    expect(piped.err).toContain('no terminal to ask on; run it again with --yes');
    expect((await stack.deps.store.get('cambio#default#cli-pipe'))?.status).toBe('failed');
    await seed('cli-pipe-held', 'held');
    const redrive = await run(['redrive', '--system', 'cambio'], { interactive: false });
    expect(redrive.code).toBe(1);
    expect(redrive.err).toContain('--yes');
    expect((await stack.deps.store.get('cambio#default#cli-pipe-held'))?.status).toBe('held');
  });

  it('looks the payment up before asking anything', async () => {
    const missing = await run(['repost', 'cambio', 'cli-nowhere', '--evidence', 'x'], { answer: true });
    expect(missing.code).toBe(1);
    expect(missing.asked).toEqual([]);
    expect(missing.err).toBe('no cambio payment with key "cli-nowhere" on test stack');
    await seed('cli-posted', 'posted');
    const posted = await run(['payments', 'resolve', 'cambio', 'cli-posted', '--repost', '--evidence', 'x'], { answer: true });
    expect(posted.code).toBe(1);
    expect(posted.asked).toEqual([]);
    expect(posted.err).toBe('cambio cli-posted is posted: resolve --repost is only for failed, held, unknown payments');
    const asked = await run(['repost', 'cambio', 'cli-pipe', '--evidence', 'corrected in Cambio'], { answer: false });
    expect(asked.asked).toEqual(['Send cambio cli-pipe (failed) again as revision 2? Only if you are sure it did not arrive. [y/N] ']);
    expect(asked.code).toBe(1);
  });

  it('repost sends a failed payment again as a new revision; show lists the earlier one', async () => {
    const done = await run(['repost', 'cambio', 'cli-pipe', '--evidence', 'contact created in Cambio', '--by', 'ops-anna'], { answer: true });
    expect(done.code).toBe(0);
    // Said before it acts (issue 19): what the downstream may hold, and what the repost will do.
    expect(done.out).toBe('cambio cli-pipe is failed; cambio holds nothing; repost will send it to cambio\ncambio cli-pipe queued to be sent again as revision 2 (by ops-anna)');
    await waitForStatus(stack, 'cambio', 'cli-pipe', ['posted']);
    expect(stack.cambio!.stats.applied['cli-pipe']).toBe(1);
    const shown = await run(['payments', 'show', 'cambio', 'cli-pipe']);
    expect(shown.out).toMatch(/^cambio cli-pipe: posted, revision 2$/m);
    expect(shown.out).toMatch(/^earlier revisions$/m);
    expect(shown.out).toMatch(/^ {2}revision 1: failed after 1 attempt, ended /m);
    expect(shown.out).toMatch(/sent again because\s+reposted by ops-anna: contact created in Cambio/);
    const json = JSON.parse((await run(['payments', 'show', 'cambio', 'cli-pipe', '--json'])).out);
    expect(json.revisions).toEqual([expect.objectContaining({ revision: 1, status: 'failed', reason: 'reposted by ops-anna: contact created in Cambio' })]);
    expect((await run(['repost', 'cambio', 'cli-pipe', '--evidence', 'x', '--yes'])).err).toContain('is posted: repost is only for failed, held, unknown payments');
  });

  it('resolve: an unknown payment is marked posted, or not posted, with evidence; --repost only after confirmation', async () => {
    for (const key of ['cli-u1', 'cli-u2', 'cli-u3']) await seed(key, 'unknown');
    expect((await run(['payments', 'list', '--status', 'unknown'])).out).toMatch(/cli-u3[\s\S]*cli-u2[\s\S]*cli-u1/);

    await expect(run(['payments', 'resolve', 'cambio', 'cli-u1', '--posted'])).rejects.toThrow(UsageError);
    await expect(run(['payments', 'resolve', 'cambio', 'cli-u1', '--posted', '--repost', '--evidence', 'x'])).rejects.toThrow(/either --posted/);
    await expect(run(['payments', 'resolve', 'cambio', 'cli-u1', '--not-posted', '--posted', '--evidence', 'x'])).rejects.toThrow(/either --posted/);
    const posted = await run(['payments', 'resolve', 'cambio', 'cli-u1', '--posted', '--evidence', 'seen in Cambio journal 2026-11-22', '--by', 'ops-anna']);
    expect(posted.code).toBe(0);
    expect(posted.out).toMatch(/^cambio cli-u1 is unknown; cambio holds maybe revision 1 \(an answer at \S+ left it unconfirmed\); resolve-posted will record it as posted; nothing is sent\ncambio cli-u1 recorded as posted by ops-anna$/);
    const r1 = await statusOf(stack, 'cambio', 'cli-u1');
    expect(r1.status).toBe('posted');
    expect(r1.history.at(-1)).toMatchObject({ event: 'resolved_posted', detail: 'by ops-anna: seen in Cambio journal 2026-11-22' });
    expect(stack.cambio!.stats.applied['cli-u1']).toBeUndefined();

    const notPosted = await run(['payments', 'resolve', 'cambio', 'cli-u3', '--not-posted', '--evidence', 'not in the journal', '--by', 'ops-anna', '--json']);
    expect(notPosted.code).toBe(0);
    expect(JSON.parse(notPosted.out)).toEqual({ ok: true, action: 'resolve-not-posted', system: 'cambio', key: 'cli-u3', status: 'failed', revision: 1, by: 'ops-anna' });
    const r3 = await statusOf(stack, 'cambio', 'cli-u3');
    expect(r3.status).toBe('failed');
    expect(r3.history.at(-1)).toMatchObject({ event: 'resolved_not_posted', detail: 'by ops-anna: not in the journal' });
    expect(stack.cambio!.stats.applied['cli-u3']).toBeUndefined();

    const refused = await run(['payments', 'resolve', 'cambio', 'cli-u2', '--repost', '--evidence', 'not in Cambio']);
    expect(refused.code).toBe(1);
    expect(refused.asked).toHaveLength(1);
    expect((await statusOf(stack, 'cambio', 'cli-u2')).status).toBe('unknown');
    const again = await run(['payments', 'resolve', 'cambio', 'cli-u2', '--repost', '--evidence', 'not in Cambio', '--yes']);
    expect(again.code).toBe(0);
    await waitForStatus(stack, 'cambio', 'cli-u2', ['posted']);
    expect(stack.cambio!.stats.applied['cli-u2']).toBe(1);
    expect((await run(['payments', 'resolve', 'cambio', 'cli-u2', '--posted', '--evidence', 'x'])).err).toBe('cambio cli-u2 is posted: resolve is only for unknown, held payments');
    expect((await run(['payments', 'resolve', 'cambio', 'cli-nope', '--not-posted', '--evidence', 'x'])).err).toBe('no cambio payment with key "cli-nope" on test stack');
  });

  it('sign prints a curl whose signature verifies with the dev secret, and the route takes it', async () => {
    const body = JSON.stringify(notice('cli-signed'));
    const signed = await run(['sign', ROUTE, body, '--url', stack.url]);
    expect(signed.code).toBe(0);
    expect(signed.err).toContain('signed with the dev secret');
    const lines = signed.out.split(' \\\n  ');
    expect(lines[0]).toBe(`curl -sS -i -X POST '${stack.url}${ROUTE}'`);
    const headers = Object.fromEntries(lines.filter((l) => l.startsWith('-H ')).map((l) => l.slice(4, -1).split(': ') as [string, string]));
    expect(lines.at(-1)).toBe(`--data-raw '${body}'`);
    expect(new Webhook(DEV_WEBHOOK_SECRET).verify(body, headers)).toEqual(JSON.parse(body));
    expect(() => new Webhook(`whsec_${Buffer.from('another secret, 32 bytes long!!!').toString('base64')}`).verify(body, headers)).toThrow();
    const res = await fetch(`${stack.url}${ROUTE}`, { method: 'POST', headers, body, signal: AbortSignal.timeout(10_000) });
    // Posted in process (201), or queued on a busy machine (202) and posted after (the sender's record: read from the store).
    expect([201, 202]).toContain(res.status);
    await eventually(async () => (await stack.deps.store.get(recordPk('cambio', 'default', 'cli-signed')))?.status === 'posted');

    // Quotes in the body survive the shell; extra headers (NIF's ClubId) are passed on; --json gives the parts.
    const quoted = await run(['sign', '/v1/nif/membership/payments', `{"comment":"it's paid"}`, '--header', 'ClubId: 4568', '--json', '--url', stack.url]);
    const parts = JSON.parse(quoted.out);
    expect(parts.headers.ClubId).toBe('4568');
    expect(parts.curl).toContain(`--data-raw '{"comment":"it'\\''s paid"}'`);
    expect(new Webhook(DEV_WEBHOOK_SECRET).verify(parts.body, parts.headers)).toEqual({ comment: "it's paid" });
    await expect(run(['sign', 'v1/cambio', body])).rejects.toThrow(/ROUTE is a path/);
    await expect(run(['sign', ROUTE, body, '--stage', 'prod'])).rejects.toThrow(/sign is for the local stack/);
  });

  it('simulate shows its progress while it runs', async () => {
    // --dup 1: every payment delivered twice, so the counts are known.
    const sim = await run(['simulate', '--n', '4', '--dup', '1', '--storm', '0']);
    expect(sim.code).toBe(0);
    expect(sim.out).toMatch(/^sending 8 deliveries of 4 payments/m);
    expect(sim.progress[0]).toBe('sending   [..............................] 0/8');
    expect(sim.progress.some((l) => /^sending {3}\[#{30}\] 8\/8 {2}\d+ s$/.test(l))).toBe(true);
    expect(sim.progress.some((l) => /^settling {2}\[#{30}\] 4\/4 {2}4 posted {2}\d+ s$/.test(l))).toBe(true);
    expect(sim.progress.filter((l) => l === '<end>')).toHaveLength(2);
    expect(sim.progress.at(-1)).toBe('<end>');
    expect(sim.out).toMatch(/^suppressed {9}4 duplicate deliveries/m);
    expect(sim.out).toMatch(/reached Cambio {5}4 once, 0 more than once, 0 never/);
  });

  it('show --wait waits while the engine works on the payment, then shows where it ended', async () => {
    await seed('cli-wait', 'retrying', { error: { kind: 'retryable', message: 'HTTP 503' } });
    const settled = (async () => {
      await new Promise((r) => setTimeout(r, 400));
      const current = await stack.deps.store.get('cambio#default#cli-wait');
      await stack.deps.store.replace({ ...current!, status: 'posted', result: { httpStatus: 200, body: [{ ResultCode: 'OK' }] } }, current!.version);
    })();
    const shown = await run(['payments', 'show', 'cambio', 'cli-wait', '--wait']);
    await settled;
    expect(shown.code).toBe(0);
    expect(shown.out).toMatch(/^cambio cli-wait: posted$/m);
    // Without --wait it shows what is there now.
    await seed('cli-nowait', 'retrying');
    expect((await run(['payments', 'show', 'cambio', 'cli-nowait'])).out).toMatch(/^cambio cli-nowait: retrying$/m);
  });

  it('limits shows each system\'s ceiling, the rate paced now, and what a 429 taught with its next probe (issue 23)', async () => {
    // A burst at a configured 25/s whose eleventh send meets a limit of 10 (nif-corporate: no other case here
    // sends to it, so its pace changes nothing else).
    await burstMeetingLimitOf10(stack.deps.pacer, 'nif-corporate', 25);

    const shown = await run(['limits']);
    expect(shown.code).toBe(0);
    expect(shown.out).toMatch(/^SYSTEM\s+CEILING\s+PACED NOW\s+LEARNT FROM 429s\s+STATED\s+PAUSED UNTIL\s+LAST 429$/m);
    expect(shown.out).toMatch(/^nif-corporate\s+25\/s\s+10\/s\s+10\/s, next probe in \d+ s\s+-\s+\S+Z \(in \d+ s|just now\)/m);
    expect(shown.out).toMatch(/^kontantanalys\s+-\s+-\s+nothing paced yet/m);

    const json = JSON.parse((await run(['limits', '--system', 'nif-corporate', '--json'])).out) as { limits: Record<string, Record<string, number | string>> };
    expect(Object.keys(json.limits)).toEqual(['nif-corporate']);
    expect(json.limits['nif-corporate']).toMatchObject({ configured: 25, pacedNow: 10, learnt: 10 });
    expect(Date.parse(json.limits['nif-corporate']!.nextProbeAt as string)).toBeGreaterThan(Date.now());
    await expect(run(['limits', '--system', 'paypal'])).rejects.toThrow(/unknown system "paypal"/);
    await expect(run(['limits', 'cambio'])).rejects.toThrow(/limits takes no arguments/);
  });

  it('refuses unknown commands, systems, statuses and options with a usage error', async () => {
    await expect(run(['payments', 'list', '--status', 'lost'])).rejects.toThrow(/--status must be one or more of/);
    await expect(run(['payments', 'list', '--system', 'paypal'])).rejects.toThrow(/unknown system "paypal"/);
    await expect(run(['payments', 'list', '--limit', '0'])).rejects.toThrow(/--limit must be/);
    await expect(run(['payments', 'show', 'paypal', 'x'])).rejects.toThrow(/unknown system "paypal"/);
    await expect(run(['payments', 'list', '--stats', 'held'])).rejects.toThrow(/Unknown option '--stats'/);
    await expect(run(['frobnicate'])).rejects.toThrow(/unknown command/);
    expect((await run(['--help'])).out).toContain('paybridge payments list');
  });
});

describe('the paybridge bin', () => {
  const bin = fileURLToPath(new URL('../../shared/cli/bin.mjs', import.meta.url));
  const importLog = fileURLToPath(new URL('../helpers/import-log.mjs', import.meta.url));
  // A bundle of its own, built by the first call: inside the project, where the bundle's packages resolve.
  const bundleDir = fileURLToPath(new URL(`../../node_modules/.cache/paybridge-cli-test-${process.pid}`, import.meta.url));
  let stack: Stack;
  let dir: string;
  beforeAll(async () => {
    stack = await testStack();
    dir = mkdtempSync(join(tmpdir(), 'pb-cli-'));
    // As npm start keeps it: the operator key in its own owner-only file, named in local.json.
    writeFileSync(join(dir, 'operator-key'), `${stack.operatorKey}\n`, { mode: 0o600 });
    writeFileSync(
      join(dir, 'local.json'),
      JSON.stringify({ apiUrl: stack.url, apiKey: DEV_API_KEY, dynamoEndpoint: stack.dynamoEndpoint, tableName: stack.deps.config.TABLE_NAME, sandboxes: { cambio: stack.cambio?.url }, operatorKeyFile: join(dir, 'operator-key') }),
    );
  });
  afterAll(async () => {
    await stack?.close();
    rmSync(dir, { recursive: true, force: true });
    rmSync(bundleDir, { recursive: true, force: true });
  });

  /**
   * Runs the bin as an operator would (stdin not a terminal), recording every module it loads. Not
   * spawnSync: the stack it talks to runs in this process and must keep answering meanwhile.
   */
  async function paybridge(args: string[], env: Record<string, string> = {}) {
    const log = join(dir, `imports-${Math.random().toString(36).slice(2)}.log`);
    writeFileSync(log, '');
    const child = spawn(process.execPath, ['--import', importLog, bin, ...args], {
      timeout: 20_000,
      env: { ...process.env, PAYBRIDGE_LOCAL_FILE: join(dir, 'local.json'), PAYBRIDGE_CLI_CACHE: bundleDir, PB_IMPORT_LOG: log, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const status = await new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    return { status, stdout, stderr, imports: readFileSync(log, 'utf8').split('\n').filter(Boolean) };
  }

  // What issue 15 found making every call slow: none of these is needed to print help or list payments.
  const HEAVY_PACKAGES = [/@aws-sdk\/client-sqs/, /@aws-sdk\/client-ssm/, /\/zod\//, /\/undici\//, /dynalite/, /standardwebhooks/];
  const HEAVY_SOURCES = [/\/shared\/systems\//, /\/shared\/config\.ts/, /\/shared\/cli\/simulate\.ts/, /\/shared\/local\//, /\/shared\/http\//];
  const loaded = (imports: string[], patterns: RegExp[]) => imports.filter((u) => patterns.some((p) => p.test(u)));
  /**
   * The AWS SDK is inside the CLI's bundle (shared/cli/launch.mjs), so no import names its package: which
   * clients a call loaded is read from the text of the bundle's chunks it imported.
   */
  const bundledText = (imports: string[]) => imports.filter((u) => u.includes(`/paybridge-cli-test-${process.pid}/b-`)).map((u) => readFileSync(fileURLToPath(u), 'utf8')).join('\n');
  const CLIENTS = { dynamodb: /\bDynamoDBClient = class\b/, sqs: /\bSQSClient = class\b/, ssm: /\bSSMClient = class\b/ };

  it('prints usage without loading the AWS SDK or anything heavy, from the bundle and from the sources', async () => {
    const built = await paybridge(['--help']);
    expect(built.status).toBe(0);
    expect(built.stdout).toContain('paybridge payments resolve SYSTEM KEY');
    expect(built.imports.some((u) => u.includes(`/paybridge-cli-test-${process.pid}/b-`))).toBe(true);
    expect(loaded(built.imports, [...HEAVY_PACKAGES, /@aws-sdk\//, /\/tsx\//])).toEqual([]);
    for (const client of Object.values(CLIENTS)) expect(bundledText(built.imports)).not.toMatch(client);

    // The module graph itself, file by file: through tsx, as without a bundle.
    const sources = await paybridge(['--help'], { PAYBRIDGE_CLI_BUNDLE: 'off' });
    expect(sources.stdout).toBe(built.stdout);
    expect(sources.imports.some((u) => u.endsWith('/shared/cli/main.ts'))).toBe(true);
    expect(loaded(sources.imports, [...HEAVY_PACKAGES, ...HEAVY_SOURCES, /@aws-sdk\//, /\/shared\/store\//])).toEqual([]);
  });

  it('lists payments with the DynamoDB client only', async () => {
    await call(stack, 'POST', ROUTE, notice('bin-1'));
    for (const env of [{}, { PAYBRIDGE_CLI_BUNDLE: 'off' }] as Record<string, string>[]) {
      const list = await paybridge(['payments', 'list'], env);
      expect(list.stderr).toBe('');
      expect(list.status).toBe(0);
      expect(list.stdout).toMatch(/cambio\s+bin-1\s+posted/);
      if (env.PAYBRIDGE_CLI_BUNDLE === 'off') expect(list.imports.some((u) => u.includes('@aws-sdk/client-dynamodb'))).toBe(true);
      else {
        // From the bundle: the DynamoDB client inside it, and no SDK package loaded from node_modules.
        expect(bundledText(list.imports)).toMatch(CLIENTS.dynamodb);
        expect(bundledText(list.imports)).not.toMatch(CLIENTS.sqs);
        expect(bundledText(list.imports)).not.toMatch(CLIENTS.ssm);
        expect(loaded(list.imports, [/@aws-sdk\//])).toEqual([]);
      }
      expect(loaded(list.imports, [...HEAVY_PACKAGES, ...HEAVY_SOURCES])).toEqual([]);
    }
  });

  it('limits reads the limiter items of the stack its file names', async () => {
    await stack.deps.pacer.reserve('brp', 7, 1, Date.now() + 5_000);
    const r = await paybridge(['limits', '--json']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect((JSON.parse(r.stdout) as { limits: Record<string, unknown> }).limits.brp).toEqual({ configured: 7, pacedNow: 7 });
  });

  it('says --yes is needed when there is no terminal to ask on', async () => {
    await call(stack, 'POST', ROUTE, notice('ERROR-bin'));
    const r = await paybridge(['repost', 'cambio', 'ERROR-bin', '--evidence', 'fixed the contact']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('not re-posted: this asks for confirmation and there is no terminal to ask on; run it again with --yes');
  });

  it('says plainly when no local stack is running', async () => {
    const none = await paybridge(['payments', 'list', '--status', 'held'], { PAYBRIDGE_LOCAL_FILE: '/nonexistent/local.json' });
    expect(none.status).toBe(1);
    expect(none.stderr).toContain('no local stack found');
    expect(none.stderr).not.toContain('NodeVersionSupportWarning');
    const usage = await paybridge(['payments', 'list', '--status', 'lost']);
    expect(usage.status).toBe(2);
    expect(usage.stderr).toContain('--status must be one or more of');
  });

  it('hides a personId behind the stack\'s own ref: hash, the same on every call', async () => {
    const year = new Date().getFullYear();
    const payment = {
      amount: '450', externalId: 'bin-nif-1', isPaid: 'true', orgId: '4568', paidDate: `${year}-05-08`, paidToOrgId: '4568', paymentCategory: 'Club membership',
      paymentTypeId: 0, periodFrom: `${year}-05-08`, periodTo: `${year}-06-08`, personId: '8675683',
    };
    expect([201, 202]).toContain((await call(stack, 'POST', '/v1/nif/membership/payments', payment, { ClubId: '4568' })).status);
    await waitForStatus(stack, 'nif-membership', '4568:bin-nif-1', ['posted']);
    // What npm start writes: the key in its own file, the file named in local.json.
    const key = 'k'.repeat(16) + randomBytes(8).toString('hex');
    writeFileSync(join(dir, 'log-hash-key'), key, { mode: 0o600 });
    const local = JSON.parse(readFileSync(join(dir, 'local.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(dir, 'local-keyed.json'), JSON.stringify({ ...local, logHashKeyFile: join(dir, 'log-hash-key') }));
    const expected = `ref:${createHmac('sha256', key).update('8675683').digest('hex').slice(0, 16)}`;
    const env = { PAYBRIDGE_LOCAL_FILE: join(dir, 'local-keyed.json'), LOG_HASH_KEY: '' };
    for (let i = 0; i < 2; i++) {
      const shown = await paybridge(['payments', 'show', 'nif-membership', '4568:bin-nif-1'], env);
      expect(shown.status).toBe(0);
      expect(shown.stdout).not.toContain('8675683');
      // On main a random key per call: a different ref each time, matching neither the logs nor the status route.
      expect(shown.stdout).toContain(expected);
    }
  });
});
