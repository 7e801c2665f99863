import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliContext } from '../../shared/cli/context.js';
import { runCli, type Io } from '../../shared/cli/main.js';
import type { PaymentRecord, Status } from '../../shared/core/types.js';
import type { Stack } from '../../shared/local/stack.js';
import { eventually, testStack } from '../helpers/stack.js';

/**
 * Issue 22: a page of payments, in the console or `paybridge payments list`, costs at most three
 * DynamoDB requests whatever the filter (before: statuses × systems × index shards Queries, 1–2.5 s on
 * an empty table). Counted at dynalite, every request from any client.
 */

const SYSTEMS = ['cambio', 'brp', 'nif'] as const;
const STATUS_MIX: Status[] = ['posted', 'posted', 'posted', 'held', 'failed', 'unknown', 'retrying', 'posted'];
const CALLERS = ['pos-a', 'pos-b', 'terminal'];

describe('the listing index', () => {
  let stack: Stack;
  const seeded: PaymentRecord[] = [];
  const requests: string[] = [];
  let counting = false;

  beforeAll(async () => {
    stack = await testStack({
      onDynamoRequest: (x) => {
        // The stack's own background passes (the events relay on events-index, the sweep on due-index) are not
        // the listing's: every other request while it runs is counted, whatever index it reads.
        const index = String(x.request.IndexName ?? '');
        if (counting && index !== 'events-index' && index !== 'due-index') requests.push(x.operation);
      },
    });
    const base = Date.now() - 3_600_000;
    for (let i = 0; i < 240; i++) {
      const system = SYSTEMS[i % SYSTEMS.length] as string;
      const status = STATUS_MIX[i % STATUS_MIX.length] as Status;
      const key = `${i % 5 === 0 ? 'vip-' : 'k-'}${String(i).padStart(4, '0')}`;
      const at = base + i * 1000;
      const record: PaymentRecord = {
        pk: `${system}#default#${key}`, system, tenant: 'default', key, status, version: 1, revision: 1, budgetFrom: at, payloadHash: 'h',
        request: {}, attempts: 1, failures: 0, checkpoints: {}, history: [{ at: new Date(at).toISOString(), event: 'received' }], correlationId: key,
        caller: CALLERS[i % CALLERS.length] as string, createdAt: new Date(at).toISOString(), createdMs: at, updatedAt: new Date(at).toISOString(), ttl: 0,
        ...(status === 'retrying' ? { nextAttemptAt: at } : {}),
      };
      await stack.deps.store.claim(record);
      seeded.push(record);
    }
    // The seeded statuses stamp settlement events (issue 21): the relay hands them on, then its poll is
    // stopped, so the requests counted below are the listing's own.
    await eventually(async () => ((await stack.events.store.pending(Date.now())).length === 0 ? true : undefined), 30_000);
    await stack.events.relay.close();
  }, 60_000);
  afterAll(async () => {
    await stack?.close();
  });

  async function list(argv: string[]) {
    const out: string[] = [];
    const io: Io = { out: (l) => out.push(l), err: (l) => out.push(l), progress: () => undefined, progressEnd: () => undefined, interactive: false, confirm: async () => false, clock: Date.now };
    const ctx = async (): Promise<CliContext> => ({
      where: 'test stack',
      store: stack.deps.store,
      queue: stack.queue,
      fence: () => stack.deps.pacer.mintFence(),
      deadLetters: { count: async () => 0, redrive: async () => 0 },
    });
    requests.length = 0;
    counting = true;
    const code = await runCli(['payments', 'list', '--json', ...argv], ctx, io);
    counting = false;
    expect(code).toBe(0);
    return { ...(JSON.parse(out.join('\n')) as { payments: { system: string; key: string; status: string }[]; cursor?: string }), requests: [...requests] };
  }

  const expected = (keep: (r: PaymentRecord) => boolean) =>
    seeded
      .filter(keep)
      .sort((a, b) => (b.createdMs as number) - (a.createdMs as number))
      .map((r) => `${r.system}/${r.key}`);

  const filters: [string, string[], (r: PaymentRecord) => boolean][] = [
    ['no filter', [], () => true],
    ['one status', ['--status', 'held'], (r) => r.status === 'held'],
    ['posted and failed', ['--status', 'posted,failed'], (r) => r.status === 'posted' || r.status === 'failed'],
    ['one system', ['--system', 'brp'], (r) => r.system === 'brp'],
    ['status and system', ['--status', 'unknown', '--system', 'nif'], (r) => r.status === 'unknown' && r.system === 'nif'],
    ['caller', ['--caller', 'terminal'], (r) => r.caller === 'terminal'],
    ['key prefix', ['--key-prefix', 'vip-'], (r) => r.key.startsWith('vip-')],
    ['since', ['--since', '30m'], (r) => (r.createdMs as number) >= Date.now() - 30 * 60_000],
  ];

  it.each(filters)('a page costs at most three DynamoDB requests: %s', async (_name, argv, keep) => {
    const page = await list([...argv, '--limit', '20']);
    expect(page.requests.length, page.requests.join(', ')).toBeLessThanOrEqual(3);
    expect(page.payments.map((p) => `${p.system}/${p.key}`)).toEqual(expected(keep).slice(0, 20));
  });

  it('walks every page of a filter across both partitions, newest first, none twice or missing', async () => {
    const keep = (r: PaymentRecord) => r.caller === 'pos-b' && r.status !== 'retrying';
    const seen: string[] = [];
    let page = await list(['--caller', 'pos-b', '--status', 'posted,held,failed,unknown', '--limit', '7']);
    for (let i = 0; i < 40; i++) {
      expect(page.requests.length).toBeLessThanOrEqual(3);
      seen.push(...page.payments.map((p) => `${p.system}/${p.key}`));
      if (!page.cursor) break;
      page = await list(['--cursor', page.cursor, '--limit', '7']);
    }
    expect(page.cursor).toBeUndefined();
    expect(seen).toEqual(expected(keep));
  });
});
