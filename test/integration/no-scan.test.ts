import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localContext } from '../../shared/cli/context.js';
import { listPage } from '../../shared/cli/listing.js';
import { runCli, type Io } from '../../shared/cli/main.js';
import { CLI_SYSTEMS } from '../../shared/cli/systems.js';
import { sweep } from '../../shared/core/recovery.js';
import { STATUSES, type PaymentRecord, type Status } from '../../shared/core/types.js';
import type { DynamoExchange } from '../../shared/local/dynamo-tap.js';
import type { Stack } from '../../shared/local/stack.js';
import { documentClient, DynamoRecordStore, makeDynamoClient } from '../../shared/store/dynamo.js';
import type { DueKind } from '../../shared/store/indexes.js';
import type { ListPage, RecordStore } from '../../shared/store/port.js';
import { runKontantanalysSync } from '../../shared/systems/kontantanalys/sync.js';
import { countByOperation, unboundedReads } from '../helpers/dynamo-guard.js';
import { call, DEV_API_KEY, testStack, waitForStatus } from '../helpers/stack.js';

/**
 * Issue 13: nothing whose cost grows with the table may Scan. Every request that reaches dynalite is
 * seen (the stack's tap, shared/local/dynamo-tap.ts), whichever client sent it: the stack's own, the
 * operator command's, this test's. The paths that grow with the table are run against a stack holding
 * records of several systems and statuses, and each must read only through keyed requests and Queries
 * that fix an index partition. The last case points the same paths at a store that scans and checks
 * the guard says so, so a guard that saw nothing cannot pass.
 */

const year = new Date().getFullYear();
const nifPayment = (externalId: string) => ({
  amount: '450', externalId, isPaid: 'true', orgId: '4568', paidDate: `${year}-05-08`, paidToOrgId: '4568',
  paymentCategory: 'Club membership', paymentTypeId: 0, periodFrom: `${year}-05-08`, periodTo: `${year}-06-08`, personId: '8675682',
});
const provider = { name: 'Guard kiosk', visitingAddress: 'Vägen 1', postalCode: '981 31', postTown: 'KIRUNA', x: 900_700, y: 7_600_700 };
const service = { providerId: 1, servicePrincipalId: 2, serviceTypeId: 1, forms: ['Uttagsautomat'], active: true, properties: { lst: true } };

/** A record store that answers its listings with Scans: what the guard exists to catch. */
class ScanningStore implements RecordStore {
  private readonly doc;
  constructor(
    private readonly inner: DynamoRecordStore,
    endpoint: string,
    private readonly table: string,
  ) {
    this.doc = documentClient(makeDynamoClient({ endpoint }));
  }
  claim = (r: PaymentRecord) => this.inner.claim(r);
  getMany = (pks: readonly string[]) => this.inner.getMany(pks);
  replace = (r: PaymentRecord, v: number) => this.inner.replace(r, v);
  private async scan(filter: string, values: Record<string, unknown>): Promise<PaymentRecord[]> {
    const out = await this.doc.send(new ScanCommand({ TableName: this.table, FilterExpression: filter, ExpressionAttributeValues: values }));
    return (out.Items ?? []) as PaymentRecord[];
  }
  async get(pk: string) {
    return (await this.scan('pk = :pk', { ':pk': pk }))[0];
  }
  async due(system: string, before: number, limit: number, kind: DueKind = 'due') {
    const found = await this.scan('begins_with(dueShard, :k) AND nextAttemptAt <= :t', { ':t': before, ':k': `${system}#${kind}#` });
    return found.slice(0, limit).map((r) => ({ pk: r.pk, at: Number(r.nextAttemptAt) }));
  }
  async list(system: string, status: Status, opts: { limit: number }): Promise<ListPage> {
    const found = await this.scan('begins_with(statusShard, :h)', { ':h': `${system}#${status}#` });
    return { records: found.slice(0, opts.limit) };
  }
}

describe('no Scan on the paths that grow with the table (issue 13)', () => {
  let stack: Stack;
  const seen: DynamoExchange[] = [];
  let dir: string;
  let localFile: string;

  /** The requests `fn` caused (background work of the stack may add keyed requests of its own). */
  async function during(fn: () => Promise<unknown>): Promise<DynamoExchange[]> {
    const from = seen.length;
    await fn();
    return seen.slice(from);
  }

  const io = (out: string[]): Io => ({
    out: (l) => out.push(l),
    err: (l) => out.push(l),
    progress: () => undefined,
    progressEnd: () => undefined,
    interactive: false,
    confirm: async () => false,
    clock: Date.now,
  });

  beforeAll(async () => {
    stack = await testStack({
      onDynamoRequest: (e) => seen.push(e),
      cambio: { ratePerSecond: 1000 },
      nif: { ratePerSecond: 1000 },
      kontantanalys: { ratePerSecond: 1000, seededProviders: 50 },
      kontantanalysSyncIntervalMs: false,
    });
    // Records of several systems and statuses: posted, held (a refused credential), failed (rejected).
    for (const id of ['guard-1', 'guard-2', 'guard-3']) await call(stack, 'POST', '/v1/cambio/payment-notices', { status: 'PAID', contactId: id, paymentType: 'CARD' });
    await call(stack, 'POST', '/v1/cambio/payment-notices', { status: 'PAID', contactId: 'ERROR-guard', paymentType: 'CARD' });
    // Settled before the 403s are queued up: a first attempt a busy machine queued must not meet them.
    for (const id of ['guard-1', 'guard-2', 'guard-3']) await waitForStatus(stack, 'cambio', id, ['posted']);
    await waitForStatus(stack, 'cambio', 'ERROR-guard', ['failed']);
    stack.cambio!.faults.push('403', '403');
    await call(stack, 'POST', '/v1/cambio/payment-notices', { status: 'PAID', contactId: 'guard-held', paymentType: 'CARD' });
    await call(stack, 'POST', '/v1/nif/membership/payments', nifPayment('guard-nif'), { ClubId: '4568' });
    await call(stack, 'PUT', '/v1/kontantanalys/providers/guard-kiosk', provider);
    await call(stack, 'PUT', '/v1/kontantanalys/services/guard-atm', service);
    await waitForStatus(stack, 'cambio', 'guard-held', ['held']);
    await waitForStatus(stack, 'nif-membership', '4568:guard-nif', ['posted']);
    await waitForStatus(stack, 'kontantanalys', 'services:guard-atm', ['posted']);
    // What `npm start` writes for the operator command: the command then opens its own DynamoDB client.
    dir = mkdtempSync(join(tmpdir(), 'pb-noscan-'));
    localFile = join(dir, 'local.json');
    writeFileSync(localFile, JSON.stringify({ apiUrl: stack.url, apiKey: DEV_API_KEY, dynamoEndpoint: stack.dynamoEndpoint, tableName: stack.deps.config.TABLE_NAME, sandboxes: {} }));
  });
  afterAll(async () => {
    await stack?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the Kontantanalys daily run reads through the status index only', async () => {
    const requests = await during(() => stack.kontantanalysSyncNow());
    expect(unboundedReads(requests)).toEqual([]);
    // One Query per status and shard at least: the run did read the index, the guard saw it.
    expect(countByOperation(requests)['Query status-index']).toBeGreaterThanOrEqual(STATUSES.length * stack.deps.config.INDEX_SHARDS);
  });

  it('`paybridge payments list` (every system and status, then the next page) reads through the listing index only, two Queries a page at most', async () => {
    const out: string[] = [];
    const first = await during(() => runCli(['payments', 'list', '--json', '--limit', '3'], () => localContext(localFile), io(out)));
    const page = JSON.parse(out.join('\n')) as { payments: unknown[]; cursor?: string };
    // At most 3: the Kontantanalys run's own summary record is dropped from the page after it is read.
    expect(page.payments.length).toBeGreaterThan(0);
    expect(page.payments.length).toBeLessThanOrEqual(3);
    expect(page.cursor).toBeDefined();
    const next = await during(() => runCli(['payments', 'list', '--json', '--cursor', page.cursor as string], () => localContext(localFile), io([])));
    const held = await during(() => runCli(['payments', 'list', '--status', 'held', '--system', 'cambio'], () => localContext(localFile), io([])));
    for (const requests of [first, next, held]) {
      expect(unboundedReads(requests)).toEqual([]);
      expect(countByOperation(requests)['Query list-index']).toBeGreaterThan(0);
      expect(countByOperation(requests)['Query list-index']).toBeLessThanOrEqual(2);
    }
  });

  it('a listing of exactly `--limit` rows offers no next page; one row fewer offers it, and that page ends it', async () => {
    const store = stack.deps.store;
    const query = { systems: ['cambio'], statuses: ['posted' as Status] };
    const all = await listPage(store, query, 100);
    const n = all.records.length;
    expect(n).toBeGreaterThanOrEqual(3);
    expect(all.cursor).toBeUndefined();
    expect((await listPage(store, query, n)).cursor).toBeUndefined();
    // One held payment: its shard's Query stops at Limit 1 and DynamoDB hands back a cursor. On main the
    // listing then said `more: --cursor ...`, and that page was empty.
    const held = await listPage(store, { systems: ['cambio'], statuses: ['held'] }, 1);
    expect(held.records.map((r) => r.key)).toEqual(['guard-held']);
    expect(held.cursor).toBeUndefined();
    const short = await listPage(store, query, n - 1);
    expect(short.records).toHaveLength(n - 1);
    const rest = await listPage(store, query, n - 1, short.cursor);
    expect(rest.records.map((r) => r.pk)).toEqual(all.records.slice(n - 1).map((r) => r.pk));
    expect(rest.cursor).toBeUndefined();
  });

  it('the sweep reads through the due index only', async () => {
    const requests = await during(() => stack.sweepNow());
    expect(unboundedReads(requests)).toEqual([]);
    expect(countByOperation(requests)['Query due-index']).toBeGreaterThanOrEqual(stack.deps.modules.size * stack.deps.config.INDEX_SHARDS);
  });

  it('the status route reads one record by its key', async () => {
    const requests = await during(() => call(stack, 'GET', '/v1/payments/cambio/guard-1'));
    expect(unboundedReads(requests)).toEqual([]);
    expect(countByOperation(requests).GetItem).toBeGreaterThanOrEqual(1);
  });

  it('nothing else the stack did here scanned either', () => {
    expect(seen.length).toBeGreaterThan(100);
    expect(unboundedReads(seen)).toEqual([]);
  });

  it('the guard catches each of those paths when the store scans', async () => {
    const scanning = new ScanningStore(stack.deps.store as DynamoRecordStore, stack.dynamoEndpoint, stack.deps.config.TABLE_NAME);
    const deps = { ...stack.deps, store: scanning };
    const paths: [string, () => Promise<unknown>][] = [
      ['kontantanalys sync', () => runKontantanalysSync(deps, 'guard')],
      ['listing', () => listPage(scanning, { systems: CLI_SYSTEMS, statuses: STATUSES }, 5)],
      ['sweep', () => sweep(deps, ['cambio', 'nif-membership'])],
      [
        'status route',
        async () => {
          // The local routes read the stack's deps: point them at the scanning store for one request.
          const own = stack.deps.store;
          stack.deps.store = scanning;
          try {
            expect((await call(stack, 'GET', '/v1/payments/cambio/guard-1')).status).toBe(200);
          } finally {
            stack.deps.store = own;
          }
        },
      ],
    ];
    for (const [name, run] of paths) {
      const caught = unboundedReads(await during(run));
      expect(caught.length, name).toBeGreaterThan(0);
      expect(caught[0]).toMatchObject({ operation: 'Scan', why: 'a Scan reads every item of the table' });
    }
  });
});

describe('the guard reads key conditions as DynamoDB does', () => {
  const query = (request: Record<string, unknown>): DynamoExchange => ({ operation: 'Query', request, status: 200, response: '', startedAt: 0, endedAt: 0 });
  it('accepts a Query that fixes the partition of the index it reads, however the names are written', () => {
    expect(
      unboundedReads([
        query({ IndexName: 'due-index', KeyConditionExpression: '#s = :s AND #n BETWEEN :a AND :t', ExpressionAttributeNames: { '#s': 'dueShard', '#n': 'nextAttemptAt' } }),
        query({ IndexName: 'status-index', KeyConditionExpression: '(statusShard = :h) AND createdMs >= :since' }),
        query({ KeyConditionExpression: 'pk = :pk' }),
        query({ IndexName: 'status-index', KeyConditions: { statusShard: { ComparisonOperator: 'EQ' } } }),
      ]),
    ).toEqual([]);
  });
  it('reports a Query that does not, one on an undeclared index, and reads that are not by key', () => {
    const found = unboundedReads([
      query({ IndexName: 'due-index', KeyConditionExpression: '#n <= :t', ExpressionAttributeNames: { '#n': 'nextAttemptAt' } }),
      query({ IndexName: 'due-index', KeyConditionExpression: '#s = :s', ExpressionAttributeNames: { '#s': 'statusShard' } }),
      query({ IndexName: 'status-index', KeyConditions: { statusShard: { ComparisonOperator: 'BEGINS_WITH' } } }),
      query({ IndexName: 'everything-index', KeyConditionExpression: 'x = :x' }),
      query({ IndexName: 'due-index' }),
      { operation: 'ExecuteStatement', request: { Statement: 'SELECT * FROM "paybridge-records"' }, status: 400, response: '', startedAt: 0, endedAt: 0 },
    ]);
    expect(found.map((f) => f.why)).toEqual([
      'a Query on due-index without dueShard = :value in its key condition',
      'a Query on due-index without dueShard = :value in its key condition',
      'a Query on status-index without statusShard = :value in its key condition',
      'a Query on everything-index, which the table does not declare',
      'a Query on due-index without dueShard = :value in its key condition',
      'ExecuteStatement is not addressed by key',
    ]);
  });
});
