import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliContext } from '../../shared/cli/context.js';
import { runCli, UsageError, type Io } from '../../shared/cli/main.js';
import type { Stack } from '../../shared/local/stack.js';
import { call, statusOf, testStack, waitForStatus } from '../helpers/stack.js';

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

  async function run(argv: string[], answer = false) {
    const out: string[] = [];
    const err: string[] = [];
    const io: Io = { out: (l) => out.push(l), err: (l) => err.push(l), confirm: async () => answer, clock: Date.now };
    const ctx = async (): Promise<CliContext> => ({
      where: 'test stack',
      store: stack.deps.store,
      queue: stack.queue,
      fence: () => stack.deps.pacer.mintFence(),
      deadLetters: { count: async () => stack.queue.deadLetters.length, redrive: async (p) => { const n = stack.queue.redriveDeadLetters(); p(n); return n; } },
    });
    const code = await runCli(argv, ctx, io);
    return { code, out: out.join('\n'), err: err.join('\n') };
  }

  it('lists held payments in a table and shows one, without its personal data', async () => {
    stack.cambio!.faults.push('403', '403');
    await call(stack, 'POST', ROUTE, notice('cli-held'), { patient: '191212121212' });
    const list = await run(['payments', 'list', '--status', 'held', '--system', 'cambio']);
    expect(list.code).toBe(0);
    expect(list.out).toMatch(/1 held payment on test stack/);
    expect(list.out).toMatch(/cambio\s+cli-held\s+held\s+1\s+\S+\s+Insufficient scope\./);
    const show = await run(['payments', 'show', 'cambio', 'cli-held']);
    expect(JSON.parse(show.out)).toMatchObject({ system: 'cambio', key: 'cli-held', status: 'held' });
    expect(show.out).not.toContain('191212121212');
    expect((await run(['payments', 'list', '--status', 'held', '--since', '1m'])).out).toContain('cli-held');
  });

  it('redrive asks first, then sends held payments again and reports', async () => {
    expect((await run(['redrive'])).code).toBe(1);
    expect((await statusOf(stack, 'cambio', 'cli-held')).status).toBe('held');
    const done = await run(['redrive', '--yes', '--by', 'ops-anna']);
    expect(done.code).toBe(0);
    expect(done.out).toContain('redriven: 1 held payment, 0 dead letters; refused: 0');
    expect(done.err).toContain('1/1');
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
    const done = await run(['redrive', '--yes']);
    expect(done.out).toContain('0 held payments and 1 dead-lettered message');
    expect(done.out).toContain('1 dead letter');
  });

  it('resolve: an unknown payment is marked posted with evidence, or re-posted only after confirmation', async () => {
    const now = Date.now();
    for (const key of ['cli-u1', 'cli-u2']) {
      await stack.deps.store.claim({
        pk: `cambio#default#${key}`, system: 'cambio', tenant: 'default', key, status: 'unknown', version: 1, revision: 1, budgetFrom: now, payloadHash: 'h',
        request: notice(key), attempts: 1, failures: 1, dueShard: 'unknown', nextAttemptAt: now, checkpoints: {},
        error: { kind: 'ambiguous', message: 'a worker died mid-attempt' }, history: [], correlationId: key,
        createdAt: new Date(now).toISOString(), updatedAt: new Date(now).toISOString(), ttl: 0,
      });
    }
    expect((await run(['payments', 'list', '--status', 'unknown'])).out).toMatch(/2 unknown payments[\s\S]*cli-u2[\s\S]*cli-u1/);

    await expect(run(['payments', 'resolve', 'cambio', 'cli-u1', '--posted'])).rejects.toThrow(UsageError);
    await expect(run(['payments', 'resolve', 'cambio', 'cli-u1', '--posted', '--repost', '--evidence', 'x'])).rejects.toThrow(/either --posted/);
    const posted = await run(['payments', 'resolve', 'cambio', 'cli-u1', '--posted', '--evidence', 'seen in Cambio journal 2026-11-22', '--by', 'ops-anna']);
    expect(posted.code).toBe(0);
    const r1 = await statusOf(stack, 'cambio', 'cli-u1');
    expect(r1.status).toBe('posted');
    expect(r1.history.at(-1)).toMatchObject({ event: 'resolved_posted', detail: 'by ops-anna: seen in Cambio journal 2026-11-22' });
    expect(stack.cambio!.stats.applied['cli-u1']).toBeUndefined();

    const refused = await run(['payments', 'resolve', 'cambio', 'cli-u2', '--repost', '--evidence', 'not in Cambio']);
    expect(refused.code).toBe(1);
    expect((await statusOf(stack, 'cambio', 'cli-u2')).status).toBe('unknown');
    const again = await run(['payments', 'resolve', 'cambio', 'cli-u2', '--repost', '--evidence', 'not in Cambio', '--yes']);
    expect(again.code).toBe(0);
    await waitForStatus(stack, 'cambio', 'cli-u2', ['posted']);
    expect(stack.cambio!.stats.applied['cli-u2']).toBe(1);
    expect((await run(['payments', 'resolve', 'cambio', 'cli-u2', '--posted', '--evidence', 'x'])).err).toContain('it is posted, not unknown');
  });

  it('refuses unknown commands, systems and statuses with a usage error', async () => {
    await expect(run(['payments', 'list', '--status', 'lost'])).rejects.toThrow(/--status must be one of/);
    await expect(run(['payments', 'show', 'paypal', 'x'])).rejects.toThrow(/unknown system "paypal"/);
    await expect(run(['frobnicate'])).rejects.toThrow(/unknown command/);
    expect((await run(['--help'])).out).toContain('paybridge payments list');
  });
});

describe('the paybridge bin', () => {
  const bin = fileURLToPath(new URL('../../shared/cli/bin.mjs', import.meta.url));
  it('runs through node, prints usage, and says plainly when no local stack is running', () => {
    const help = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8', timeout: 20_000 });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('paybridge payments resolve SYSTEM KEY');
    const none = spawnSync(process.execPath, [bin, 'payments', 'list', '--status', 'held'], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, PAYBRIDGE_LOCAL_FILE: '/nonexistent/local.json' } });
    expect(none.status).toBe(1);
    expect(none.stderr).toContain('no local stack found');
    expect(none.stderr).not.toContain('NodeVersionSupportWarning');
  });
});
