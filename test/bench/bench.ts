/**
 * `npm run bench` (issue 11): drains a backlog of Cambio payments through the whole local stack into the
 * Cambio sandbox limited to R calls per second, against the strict rolling window that Azure API
 * Management's `rate-limit` enforces (and, beside it, a forgiving token bucket), and prints per scenario:
 * seconds, ratio to N/R, share of calls answered 429, duplicates, DynamoDB requests per posted payment by
 * operation (counted where dynalite receives them), p50/p99 from intake to posted, and the most calls the
 * sandbox accepted in any rolling second. Then idle intake, concurrent redeliveries, and the intake rate
 * against a Powertools-idempotency handler doing the same post on the same dynalite.
 *
 *   npm run bench                                   # the full matrix (about seven minutes)
 *   npm run bench -- --n 200 --workers 1 --limiters rolling --no-extras
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { BatchGetItemCommand, CreateTableCommand, type AttributeValue, type BatchGetItemCommandOutput } from '@aws-sdk/client-dynamodb';
import { IdempotencyConfig, makeIdempotent } from '@aws-lambda-powertools/idempotency';
import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { makeHandler as cambioRoute } from '../../functions/cambio-payment-notice.js';
import { recordPk } from '../../shared/core/types.js';
import { lambdaContext } from '../../shared/local/server.js';
import { DEV_API_KEY, startStack, type Stack } from '../../shared/local/stack.js';
import { makeDynamoClient } from '../../shared/store/dynamo.js';
import type { LimiterKind } from '../../shared/systems/sandbox.js';
import type { SystemModule } from '../../shared/systems/types.js';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '10' },
    n: { type: 'string', default: '200,600' },
    workers: { type: 'string', default: '1,4' },
    limiters: { type: 'string', default: 'rolling,bucket' },
    concurrency: { type: 'string', default: '50' },
    'no-extras': { type: 'boolean', default: false },
    'intake-only': { type: 'boolean', default: false },
  },
});
const R = Number(values.rate);
const NS = String(values.n).split(',').map(Number);
const WORKERS = String(values.workers).split(',').map(Number);
const LIMITERS = String(values.limiters).split(',') as LimiterKind[];
const CONCURRENCY = Number(values.concurrency);
const INTAKE_ROUNDS = 3;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Counter {
  on: boolean;
  byOp: Record<string, number>;
}

function counter(): Counter {
  return { on: false, byOp: {} };
}

/**
 * A running stack, warmed by one payment (its token fetched, its connections open, its code compiled) and
 * a quiet window after it: a backlog builds on a service that is already running. The sandbox's counts
 * start again after the warm-up.
 */
async function stackFor(c: Counter, opts: { limiter: LimiterKind; workers: number; sandboxRate?: number }): Promise<Stack> {
  const stack = await startStackFor(c, opts);
  const id = `warm-${randomUUID()}`;
  await post(stack, id);
  for (let i = 0; i < 200 && !(stack.cambio!.stats.applied[id] ?? 0); i++) await sleep(50);
  await sleep(1_500);
  await fetch(`${stack.cambio!.url}/__sandbox/reset`, { method: 'POST', signal: AbortSignal.timeout(5_000) });
  return stack;
}

/** The records as they are now, read apart from paybridge's own requests (see `stackFor`). */
async function readRecords(stack: Stack, pks: string[]): Promise<Map<string, { status: string; updatedAt: string }>> {
  const client = benchClients.get(stack) ?? makeDynamoClient({ endpoint: stack.dynamoEndpoint, region: 'eu-north-1' });
  benchClients.set(stack, client);
  const table = stack.deps.config.TABLE_NAME;
  const out = new Map<string, { status: string; updatedAt: string }>();
  for (let i = 0; i < pks.length; i += 100) {
    let keys: Record<string, AttributeValue>[] | undefined = pks.slice(i, i + 100).map((pk) => ({ pk: { S: pk } }));
    for (let round = 0; keys && keys.length > 0 && round < 10; round++) {
      const res: BatchGetItemCommandOutput = await client.send(
        new BatchGetItemCommand({ RequestItems: { [table]: { Keys: keys, ProjectionExpression: 'pk, #s, updatedAt', ExpressionAttributeNames: { '#s': 'status' } } }, ReturnConsumedCapacity: BENCH_READ }),
      );
      for (const item of res.Responses?.[table] ?? []) out.set(item.pk?.S as string, { status: item.status?.S as string, updatedAt: item.updatedAt?.S as string });
      keys = res.UnprocessedKeys?.[table]?.Keys;
    }
  }
  return out;
}

const BENCH_READ = 'INDEXES';
const benchClients = new Map<Stack, ReturnType<typeof makeDynamoClient>>();

async function startStackFor(c: Counter, opts: { limiter: LimiterKind; workers: number; sandboxRate?: number }): Promise<Stack> {
  return startStack({
    port: 0,
    // As `npm start` runs: the sweep every minute (its queries are counted too), no boot sweep to do.
    sweepIntervalMs: 60_000,
    bootSweep: false,
    kontantanalysSyncIntervalMs: false,
    env: { LOG_LEVEL: 'silent', API_KEYS: DEV_API_KEY, CAMBIO_MAX_RPS: String(R) },
    cambio: { ratePerSecond: opts.sandboxRate ?? R, limiter: opts.limiter },
    // Each worker is one Lambda container: one batch at a time, its own view of the shared limiter.
    workers: opts.workers,
    queue: { concurrency: 1 },
    onDynamoRequest: ({ operation, request }) => {
      // The bench's own reads of the records (marked by asking for consumed capacity) are not paybridge's.
      if (c.on && request.ReturnConsumedCapacity !== BENCH_READ) c.byOp[operation] = (c.byOp[operation] ?? 0) + 1;
    },
  });
}

async function post(stack: Stack, contactId: string): Promise<number> {
  const res = await fetch(`${stack.url}/v1/cambio/payment-notices`, {
    method: 'POST',
    headers: { 'x-api-key': DEV_API_KEY, 'content-type': 'application/json' },
    body: JSON.stringify({ status: 'PAID', contactId, paymentType: 'CARD' }),
    signal: AbortSignal.timeout(30_000),
  });
  await res.text();
  return res.status;
}

/** Sends every delivery with at most `concurrency` in flight; returns the send time of each id's first delivery. */
async function deliver(stack: Stack, deliveries: string[], concurrency: number, replies: Record<number, number>): Promise<Map<string, number>> {
  const sentAt = new Map<string, number>();
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, deliveries.length) }, async () => {
      while (next < deliveries.length) {
        const id = deliveries[next++] as string;
        if (!sentAt.has(id)) sentAt.set(id, Date.now());
        const status = await post(stack, id);
        replies[status] = (replies[status] ?? 0) + 1;
      }
    }),
  );
  return sentAt;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

interface Row {
  scenario: string;
  n: number;
  seconds: number;
  ratio: number;
  share429: number;
  duplicates: number;
  lost: number;
  /** DynamoDB requests per payment, the minute sweep's apart. */
  perPayment: number;
  sweepPerPayment: number;
  byOp: Record<string, number>;
  p50: number;
  p99: number;
  maxInWindow: number;
  replies: Record<number, number>;
}

/** Waits until every id reached the sandbox (bounded), and measures what it took. */
async function measure(stack: Stack, c: Counter, ids: string[], sentAt: Map<string, number>, t0: number, idealMs: number, replies: Record<number, number>, scenario: string): Promise<Row> {
  const sandbox = stack.cambio!;
  const deadline = t0 + idealMs * 3 + 60_000;
  const reached = () => ids.filter((id) => (sandbox.stats.applied[id] ?? 0) > 0).length;
  while (reached() < ids.length && Date.now() < deadline) await sleep(50);
  // Every payment's outcome is recorded right after its send: wait for the records to say posted.
  const pks = ids.map((id) => recordPk('cambio', 'default', id));
  let records = await readRecords(stack, pks);
  for (let i = 0; i < 100 && [...records.values()].filter((r) => r.status === 'posted').length < ids.length; i++) {
    await sleep(100);
    records = await readRecords(stack, pks);
  }
  c.on = false;
  const drainMs = sandbox.stats.lastAppliedAt - t0;
  // Anything still queued would show itself as a duplicate now.
  await sleep(2_000);
  const duplicates = Object.values(sandbox.stats.applied).reduce((sum, n) => sum + Math.max(0, n - 1), 0);
  const latencies = ids
    .map((id) => {
      const r = records.get(recordPk('cambio', 'default', id));
      return r?.status === 'posted' ? Date.parse(r.updatedAt) - (sentAt.get(id) as number) : NaN;
    })
    .filter((x) => Number.isFinite(x))
    .sort((a, b) => a - b);
  // Only the sweep queries (once a minute, for every system, whatever the traffic): shown apart.
  const sweep = c.byOp.Query ?? 0;
  const total = Object.values(c.byOp).reduce((a, b) => a + b, 0) - sweep;
  return {
    scenario,
    n: ids.length,
    seconds: drainMs / 1000,
    ratio: drainMs / idealMs,
    share429: sandbox.stats.noticeRequests === 0 ? 0 : sandbox.stats.rateLimited / sandbox.stats.noticeRequests,
    duplicates,
    lost: ids.length - reached(),
    perPayment: total / ids.length,
    sweepPerPayment: sweep / ids.length,
    byOp: Object.fromEntries(Object.entries(c.byOp).map(([op, n]) => [op, n / ids.length])),
    p50: percentile(latencies, 50) / 1000,
    p99: percentile(latencies, 99) / 1000,
    maxInWindow: sandbox.stats.maxInAnyWindow,
    replies,
  };
}

/** A backlog: N payments delivered as fast as intake takes them, drained at R per second. */
async function drain(limiter: LimiterKind, n: number, workers: number): Promise<Row> {
  const c = counter();
  const stack = await stackFor(c, { limiter, workers });
  try {
    const run = randomUUID().slice(0, 8);
    const ids = Array.from({ length: n }, (_, i) => `bench-${run}-${i}`);
    const replies: Record<number, number> = {};
    c.on = true;
    const t0 = Date.now();
    const sentAt = await deliver(stack, ids, CONCURRENCY, replies);
    return await measure(stack, c, ids, sentAt, t0, (n / R) * 1000, replies, `${limiter} N=${n} workers=${workers}`);
  } finally {
    await stack.close();
  }
}

/** Idle intake: payments arriving one by one at half the limit, each sent by the route that received it. */
async function idle(n: number): Promise<Row> {
  const c = counter();
  const stack = await stackFor(c, { limiter: 'rolling', workers: 1 });
  try {
    const run = randomUUID().slice(0, 8);
    const ids = Array.from({ length: n }, (_, i) => `idle-${run}-${i}`);
    const replies: Record<number, number> = {};
    const sentAt = new Map<string, number>();
    const gap = 2_000 / R;
    c.on = true;
    const t0 = Date.now();
    await Promise.all(
      ids.map(async (id, i) => {
        await sleep(i * gap);
        sentAt.set(id, Date.now());
        const status = await post(stack, id);
        replies[status] = (replies[status] ?? 0) + 1;
      }),
    );
    const row = await measure(stack, c, ids, sentAt, t0, n * gap, replies, `idle intake at R/2 (${n} payments)`);
    return { ...row, ratio: NaN };
  } finally {
    await stack.close();
  }
}

/** A backlog with a tenth of the payments delivered twice at the same time (terminals retrying): still none posted twice. */
async function redeliveries(n: number): Promise<Row> {
  const c = counter();
  const stack = await stackFor(c, { limiter: 'rolling', workers: 1 });
  try {
    const run = randomUUID().slice(0, 8);
    const ids = Array.from({ length: n }, (_, i) => `redeliver-${run}-${i}`);
    const deliveries = ids.flatMap((id, i) => (i % 10 === 0 ? [id, id] : [id]));
    const replies: Record<number, number> = {};
    c.on = true;
    const t0 = Date.now();
    const sentAt = await deliver(stack, deliveries, CONCURRENCY, replies);
    return await measure(stack, c, ids, sentAt, t0, (n / R) * 1000, replies, `rolling N=${n}, 10% delivered twice`);
  } finally {
    await stack.close();
  }
}

/**
 * Intake, in-process (no HTTP): paybridge's Cambio route handler against a Powertools-idempotency handler
 * whose function makes the same Cambio post with the same client, on the same dynalite. The sandbox does
 * not limit here (paybridge still paces to R and queues the rest; the peer posts everything inline).
 */
async function intake(n: number): Promise<{ paybridge: number; peer: number; peerRequests: number; paybridgeRequests: number }> {
  const c = counter();
  const stack = await stackFor(c, { limiter: 'bucket', workers: 1, sandboxRate: 100_000 });
  try {
    const getDeps = async () => stack.deps;
    const route = cambioRoute(getDeps);
    const event = (contactId: string) =>
      ({
        resource: '/v1/cambio/payment-notices',
        path: '/v1/cambio/payment-notices',
        httpMethod: 'POST',
        headers: { 'x-api-key': DEV_API_KEY, 'content-type': 'application/json' },
        body: JSON.stringify({ status: 'PAID', contactId, paymentType: 'CARD' }),
        isBase64Encoded: false,
        pathParameters: null,
        requestContext: { requestId: randomUUID() },
      }) as unknown as APIGatewayProxyEvent;
    const run = async (call: (id: string) => Promise<unknown>, prefix: string) => {
      let next = 0;
      const t0 = Date.now();
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (next < n) await call(`${prefix}-${next++}`);
        }),
      );
      return n / ((Date.now() - t0) / 1000);
    };

    const client = makeDynamoClient({ endpoint: stack.dynamoEndpoint, region: 'eu-north-1' });
    await client.send(
      new CreateTableCommand({
        TableName: 'powertools-idempotency',
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      }),
    );
    const module = stack.deps.systems('cambio') as SystemModule;
    const peerConfig = new IdempotencyConfig({ eventKeyJmesPath: 'contactId' });
    // As a Lambda handler would (Powertools reads the time left from it; without it, it warns per call).
    peerConfig.registerLambdaContext(lambdaContext('peer', randomUUID(), 900_000));
    const peer = makeIdempotent(
      async (event: { contactId: string }) =>
        module.post({ status: 'PAID', contactId: event.contactId, paymentType: 'CARD' }, {
          correlationId: event.contactId,
          record: {} as never,
          signal: AbortSignal.timeout(20_000),
          checkpoint: async () => undefined,
        }),
      {
        persistenceStore: new DynamoDBPersistenceLayer({ tableName: 'powertools-idempotency', awsSdkV3Client: client }),
        config: peerConfig,
      },
    );
    // Warm both (token fetch, connections) before timing.
    await route(event(`warm-${randomUUID()}`), lambdaContext('cambio', randomUUID()));
    await peer({ contactId: `warm-${randomUUID()}` });

    // Rounds alternate (peer, paybridge, peer, ...) so neither gains from running warmer or later; the
    // median round of each is reported, with the DynamoDB requests counted over all of its rounds.
    const tag = randomUUID().slice(0, 6);
    const rates = { peer: [] as number[], paybridge: [] as number[] };
    const requests = { peer: 0, paybridge: 0 };
    for (let round = 0; round < INTAKE_ROUNDS; round++) {
      for (const who of ['peer', 'paybridge'] as const) {
        c.byOp = {};
        c.on = true;
        const call = who === 'peer' ? (id: string) => peer({ contactId: id }) : (id: string) => route(event(id), lambdaContext('cambio', randomUUID()));
        rates[who].push(await run(call, `${who}-${tag}-${round}`));
        c.on = false;
        requests[who] += Object.values(c.byOp).reduce((a, b) => a + b, 0);
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] as number;
    const peerRate = median(rates.peer);
    const paybridgeRate = median(rates.paybridge);
    const peerRequests = requests.peer / (n * INTAKE_ROUNDS);
    const paybridgeRequests = requests.paybridge / (n * INTAKE_ROUNDS);
    return { paybridge: paybridgeRate, peer: peerRate, peerRequests, paybridgeRequests };
  } finally {
    await stack.close();
  }
}

function fmtOps(byOp: Record<string, number>): string {
  return Object.entries(byOp)
    .sort(([, a], [, b]) => b - a)
    .map(([op, v]) => `${op.replace('Item', '')} ${v.toFixed(2)}`)
    .join(', ');
}

function table(rows: Row[]): string {
  const head = ['scenario', 'seconds', 'ratio', '429s', 'dup', 'lost', 'DynamoDB req/payment', 'by operation', 'p50/p99 s', 'max/1s'];
  const lines = rows.map((r) => [
    r.scenario,
    r.seconds.toFixed(1),
    Number.isFinite(r.ratio) ? r.ratio.toFixed(3) : '-',
    `${(r.share429 * 100).toFixed(2)}%`,
    String(r.duplicates),
    String(r.lost),
    r.sweepPerPayment > 0 ? `${r.perPayment.toFixed(2)} + ${r.sweepPerPayment.toFixed(2)} sweep` : r.perPayment.toFixed(2),
    fmtOps(r.byOp),
    `${r.p50.toFixed(1)}/${r.p99.toFixed(1)}`,
    String(r.maxInWindow),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] as string).length)));
  return [head, ...lines].map((l) => l.map((cell, i) => cell.padEnd(widths[i] as number)).join('  ')).join('\n');
}

async function main() {
  process.stdout.write(`paybridge bench: Cambio sandbox at R = ${R} calls/s, through the whole local stack (dynalite, local queue, workers)\n`);
  const rows: Row[] = [];
  for (const limiter of values['intake-only'] ? [] : LIMITERS) {
    for (const n of NS) {
      for (const w of WORKERS) {
        const row = await drain(limiter, n, w);
        rows.push(row);
        process.stdout.write(`  done: ${row.scenario} in ${row.seconds.toFixed(1)} s\n`);
      }
    }
  }
  let intakeResult: Awaited<ReturnType<typeof intake>> | undefined;
  if (!values['no-extras']) {
    if (!values['intake-only']) {
      rows.push(await idle(100));
      process.stdout.write('  done: idle intake\n');
      rows.push(await redeliveries(200));
      process.stdout.write('  done: redeliveries\n');
    }
    intakeResult = await intake(1000);
    process.stdout.write('  done: intake comparison\n');
  }
  process.stdout.write(`\n${table(rows)}\n`);
  if (intakeResult) {
    process.stdout.write(
      `\nintake, in-process, 1000 payments, ${CONCURRENCY} at a time, median of ${INTAKE_ROUNDS} alternating rounds: paybridge ${intakeResult.paybridge.toFixed(0)} payments/s (${intakeResult.paybridgeRequests.toFixed(2)} DynamoDB req each), ` +
        `Powertools idempotency + the same post ${intakeResult.peer.toFixed(0)} payments/s (${intakeResult.peerRequests.toFixed(2)} req each): ${(intakeResult.paybridge / intakeResult.peer).toFixed(2)}x\n`,
    );
  }
  const strict = rows.filter((r) => r.scenario.startsWith('rolling N='));
  const aims = [
    ['ratio <= 1.05 against the strict window', strict.filter((r) => !r.scenario.includes('twice')).every((r) => r.ratio <= 1.05)],
    ['429s <= 1% against the strict window', strict.every((r) => r.share429 <= 0.01)],
    ['no duplicates, none lost', rows.every((r) => r.duplicates === 0 && r.lost === 0)],
    ['<= 2.1 DynamoDB requests per posted payment, the minute sweep apart (once-delivered scenarios)', rows.filter((r) => !r.scenario.includes('twice')).every((r) => r.perPayment <= 2.1)],
    ...(intakeResult ? [['intake >= 1.0x the Powertools peer', intakeResult.paybridge >= intakeResult.peer] as [string, boolean]] : []),
  ] as [string, boolean][];
  process.stdout.write(`\n${aims.map(([name, ok]) => `  ${ok ? 'met   ' : 'MISSED'} ${name}`).join('\n')}\n`);
  process.exitCode = aims.every(([, ok]) => ok) ? 0 : 1;
}

main().catch((err: Error) => {
  process.stderr.write(`bench failed: ${err.stack}\n`);
  process.exit(2);
});
