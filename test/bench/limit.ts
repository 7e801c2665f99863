/**
 * `npm run bench:limit` (issue 23 items 1 and 2): the drain as a caller sees it. `npm start` (the same entry,
 * `shared/local/start.ts`) runs as a child process with its own data directory and port; the downstream
 * sandbox runs in ANOTHER child process (this file with `--serve`), limited by a strict rolling window of R
 * calls per second, as Azure API Management's `rate-limit` does. The bench posts N payments over HTTP as a
 * caller would (50 at a time) and measures from the first delivery to the downstream's last acceptance (the
 * sandbox reports the time its limit let each call through), beside N/R: the time the real limit allows.
 * It counts the calls answered 429 and the DynamoDB requests per payment (counted where the embedded dynalite
 * receives them, by `limit-tap.ts` loaded into the child). Each figure is printed with the machine's load.
 *
 * Scenarios (`--scenarios`, comma-separated):
 *   known    configured = real = 10/s (Cambio), N = 200 and 600 (`--n`)
 *   wrong    configured 25/s, real 10/s (Cambio), N = 200
 *   crash    configured 10/s, real 5/s (NIF second generation), N = 60 in one burst, SIGKILL 3 s in, restart;
 *            the rest against the time the real limit allows for what had not reached NIF
 *
 *   npm run bench:limit
 *   npm run bench:limit -- --scenarios known --n 200 --runs 2
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { currentRate } from '../../shared/core/pacing.js';
import { DEV_API_KEY } from '../../shared/local/stack.js';
import { freePort, untilAnswering } from '../helpers/start.js';
import { DynamoLimiterStore, makeDynamoClient } from '../../shared/store/dynamo.js';
import { CambioSandbox } from '../../shared/systems/cambio/simulator.js';
import { NifSandbox } from '../../shared/systems/nif/simulator.js';

const { values } = parseArgs({
  options: {
    serve: { type: 'string' },
    rate: { type: 'string' },
    'control-port': { type: 'string' },
    scenarios: { type: 'string', default: 'known,wrong,crash' },
    n: { type: 'string', default: '200,600' },
    runs: { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '50' },
    keep: { type: 'boolean', default: false },
    verbose: { type: 'boolean', default: false },
  },
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const YEAR = new Date().getFullYear();

// ---------------------------------------------------------------------------------------------------

interface DownstreamView {
  accepted: number[];
  distinct: number;
  duplicates: number;
  rateLimited: number;
  maxInAnyWindow: number;
}

const progress = (text: string) => process.stderr.write(`  [${new Date().toISOString().slice(11, 23)}] ${text}\n`);
const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

const kill = (child: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGKILL') => {
  try {
    if (child?.pid) process.kill(-child.pid, signal);
  } catch {
    /* already gone */
  }
};

async function getJson<T>(url: string, headers: Record<string, string> = {}): Promise<T> {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(5_000) });
  return (await res.json()) as T;
}

/** The downstream sandbox in its own process group; resolves once it prints where it listens. */
async function startDownstream(system: 'cambio' | 'nif', rate: number): Promise<{ child: ChildProcess; info: { url: string; tokenUrl: string; options: Record<string, unknown> }; control: string }> {
  const controlPort = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/bench/limit.ts', '--serve', system, '--rate', String(rate), '--control-port', String(controlPort)], {
    detached: true,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  });
  const info = await new Promise<{ url: string; tokenUrl: string; options: Record<string, unknown> }>((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error('the downstream sandbox did not start within 30 s')), 30_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
      const line = text.split('\n')[0];
      if (text.includes('\n') && line) {
        clearTimeout(timer);
        resolve(JSON.parse(line) as { url: string; tokenUrl: string; options: Record<string, unknown> });
      }
    });
  });
  return { child, info, control: `http://127.0.0.1:${controlPort}` };
}

interface Paybridge {
  child: ChildProcess;
  base: string;
  tap: string;
  start(): ChildProcess;
}

/** `npm start`'s entry in its own process group, its own port and data directory, pointed at the downstream. */
async function startPaybridge(dir: string, env: NodeJS.ProcessEnv): Promise<Paybridge> {
  const port = await freePort();
  const tapPort = await freePort();
  const log = createWriteStream(join(dir, 'npm-start.log'), { flags: 'a' });
  const fullEnv: NodeJS.ProcessEnv = {
    ...process.env,
    ...env,
    PORT: String(port),
    PAYBRIDGE_DATA_DIR: join(dir, 'dynalite'),
    PAYBRIDGE_LOCAL_FILE: join(dir, 'local.json'),
    LOG_LEVEL: 'warn',
    LOG_FORMAT: 'json',
    LIMIT_BENCH_TAP_PORT: String(tapPort),
    ...(values.verbose ? { LIMIT_BENCH_TAP_DETAIL: '1' } : {}),
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
  const start = () => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--import', './test/bench/limit-tap.ts', 'shared/local/start.ts'], { env: fullEnv, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.pipe(log, { end: false });
    child.stderr?.pipe(log, { end: false });
    return child;
  };
  const pb = { child: start(), base: `http://127.0.0.1:${port}`, tap: `http://127.0.0.1:${tapPort}`, start };
  await untilAnswering(pb.base, 60_000);
  return pb;
}

const cambioBody = (id: string) => ({ status: 'PAID', contactId: id, paymentType: 'CARD' });
const nifBody = (id: string) => ({
  amount: '450', externalId: id, isPaid: 'true', orgId: '7896', paidDate: `${YEAR}-05-08`, paidToOrgId: '4568',
  paymentCategory: 'Club membership', paymentTypeId: 0, periodFrom: `${YEAR}-05-08`, periodTo: `${YEAR}-06-08`, personId: '8675682',
});

/** One delivery; the HTTP status, or 0 when the connection failed (the process was killed under it). */
async function deliver(base: string, system: 'cambio' | 'nif', id: string): Promise<number> {
  try {
    const res = await fetch(`${base}${system === 'cambio' ? '/v1/cambio/payment-notices' : '/v1/nif/payments'}`, {
      method: 'POST',
      headers: { 'x-api-key': DEV_API_KEY, 'content-type': 'application/json' },
      body: JSON.stringify(system === 'cambio' ? cambioBody(id) : nifBody(id)),
      signal: AbortSignal.timeout(30_000),
    });
    await res.text();
    return res.status;
  } catch {
    return 0;
  }
}

/** Delivers every id, `concurrency` at a time; the time the first request left. */
async function deliverAll(base: string, system: 'cambio' | 'nif', ids: string[], concurrency: number, answers?: Map<string, number>): Promise<number> {
  let next = 0;
  const first = Date.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, ids.length) }, async () => {
      while (next < ids.length) {
        const id = ids[next++] as string;
        const status = await deliver(base, system, id);
        answers?.set(id, status);
      }
    }),
  );
  return first;
}

/** Waits (bounded) until the downstream holds every one of `n` payments under `prefix`. */
async function untilAccepted(control: string, prefix: string, n: number, limitMs: number): Promise<DownstreamView | undefined> {
  const until = Date.now() + limitMs;
  while (Date.now() < until) {
    const view = await getJson<DownstreamView>(`${control}/?prefix=${encodeURIComponent(prefix)}`).catch(() => undefined);
    if (view && view.distinct >= n) return view;
    await sleep(100);
  }
  return undefined;
}

/** The rate the shared limiter paces to at the end (read after the counts: the bench's own read is not paybridge's). */
async function learntRate(dir: string, system: string, configured: number): Promise<string> {
  try {
    const local = JSON.parse(readFileSync(join(dir, 'local.json'), 'utf8')) as { dynamoEndpoint: string; tableName: string };
    const client = makeDynamoClient({ endpoint: local.dynamoEndpoint, region: 'eu-north-1' });
    const state = await new DynamoLimiterStore(client, local.tableName).read(system);
    client.destroy();
    return `paced at ${currentRate(state, configured)}/s at the end${state.probeEveryMs ? `, next probe after ${state.probeEveryMs / 1000} s quiet` : ''}`;
  } catch (err) {
    return `limiter not read: ${(err as Error).message}`;
  }
}

/** Accepted calls per second from `from`: where the drain ran below the limit. */
const perSecond = (times: number[], from: number) => {
  const out: number[] = [];
  for (const t of times) out[Math.floor((t - from) / 1000)] = (out[Math.floor((t - from) / 1000)] ?? 0) + 1;
  return Array.from(out, (x) => x ?? 0).join(',');
};

// Keys with a colon are the tap's detail (by table and index, `--verbose`): the same requests counted again.
const sum = (counts: Record<string, number>) => Object.entries(counts).reduce((a, [k, v]) => (k.includes(':') ? a : a + v), 0);
const minus = (a: Record<string, number>, b: Record<string, number>) => Object.fromEntries(Object.entries(a).map(([k, v]) => [k, v - (b[k] ?? 0)]).filter(([, v]) => (v as number) > 0));

interface Row {
  scenario: string;
  n: number;
  rate: number;
  configured: number;
  seconds: number;
  ratio: number;
  share429: number;
  dynamoPerPayment: number;
  /** Of dynamoPerPayment, events out's (see limit-tap.ts eventsOut); the rest is the payment path's. */
  eventsPerPayment: number;
  firstAcceptMs: number;
  gaps: number;
  duplicates: number;
  maxInAnyWindow: number;
  load: string;
  note?: string;
}

/** Known or wrong limit: warm up with one payment, then N at once; first delivery → last acceptance. */
async function drain(scenario: string, n: number, configured: number, real: number, concurrency: number): Promise<Row> {
  const dir = mkdtempSync(join(tmpdir(), 'paybridge-limit-'));
  const down = await startDownstream('cambio', real);
  let pb: Paybridge | undefined;
  try {
    pb = await startPaybridge(dir, {
      CAMBIO_BASE_URL: down.info.url,
      CAMBIO_TOKEN_URL: down.info.tokenUrl,
      CAMBIO_CLIENT_ID: String(down.info.options.clientId),
      CAMBIO_CLIENT_SECRET: String(down.info.options.clientSecret),
      CAMBIO_SUBSCRIPTION_KEY: String(down.info.options.subscriptionKey),
      CAMBIO_MAX_RPS: String(configured),
    });
    progress(`${scenario} N=${n}: npm start answering on ${pb.base}`);
    // A backlog builds on a service already running: its token fetched, its connections open.
    const warm = `warm-${Math.random().toString(36).slice(2, 8)}`;
    await deliver(pb.base, 'cambio', warm);
    await untilAccepted(down.control, warm, 1, 20_000);
    await sleep(1_500);
    await fetch(down.control, { method: 'POST', signal: AbortSignal.timeout(5_000) });
    const before = await getJson<Record<string, number>>(pb.tap);
    const loadBefore = load();
    const run = `lb-${Math.random().toString(36).slice(2, 8)}-`;
    const ids = Array.from({ length: n }, (_, i) => `${run}${i}`);
    progress('warmed; delivering');
    const firstDelivery = await deliverAll(pb.base, 'cambio', ids, concurrency);
    progress('delivered; waiting for the downstream');
    const view = await untilAccepted(down.control, run, n, 20_000 + (n / real) * 4_000);
    if (!view) throw new Error(`${scenario}: not all ${n} reached the downstream in time; npm start's output is in ${dir}`);
    // The record writes after the last acceptance belong to it too.
    await sleep(1_500);
    if (values.verbose) for (const id of ids.slice(0, 6)) progress(`${id}: ${JSON.stringify(((await getJson<{ history: unknown[] }>(`${pb.base}/v1/payments/cambio/${id}`, { 'x-api-key': DEV_API_KEY })) ?? { history: [] }).history)}`);
    const after = await getJson<Record<string, number>>(pb.tap);
    const accepted = [...view.accepted].sort((a, b) => a - b);
    const last = accepted[accepted.length - 1] as number;
    const seconds = (last - firstDelivery) / 1000;
    let gaps = 0;
    for (let i = 1; i < accepted.length; i++) if ((accepted[i] as number) - (accepted[i - 1] as number) > 150) gaps++;
    const requests = accepted.length + view.rateLimited;
    return {
      scenario,
      n,
      rate: real,
      configured,
      seconds,
      ratio: seconds / (n / real),
      share429: view.rateLimited / requests,
      dynamoPerPayment: sum(minus(after, before)) / n,
      eventsPerPayment: ((after['part:events'] ?? 0) - (before['part:events'] ?? 0)) / n,
      firstAcceptMs: (accepted[0] as number) - firstDelivery,
      gaps,
      duplicates: view.duplicates,
      maxInAnyWindow: view.maxInAnyWindow,
      load: `${loadBefore} → ${load()}`,
      note: `${JSON.stringify(minus(after, before))}; ${await learntRate(dir, 'cambio', configured)}${values.verbose ? `; per second: ${perSecond(accepted, firstDelivery)}; first 20 accepted at (ms): ${accepted.slice(0, 20).map((t) => t - firstDelivery).join(' ')}` : ''}`,
    };
  } finally {
    kill(pb?.child);
    kill(down.child);
    if (!values.keep) rmSync(dir, { recursive: true, force: true });
  }
}

/** Configured 10/s, real 5/s (NIF second generation): N at once, SIGKILL a few seconds in, restart, redeliver. */
async function crash(n: number, configured: number, real: number, killAfterMs: number): Promise<Row> {
  const dir = mkdtempSync(join(tmpdir(), 'paybridge-limit-'));
  const down = await startDownstream('nif', real);
  let pb: Paybridge | undefined;
  let child: ChildProcess | undefined;
  try {
    const o = down.info.options;
    pb = await startPaybridge(dir, {
      NIF_BASE_URL: down.info.url,
      NIF_TOKEN_URL: down.info.tokenUrl,
      NIF_CLIENT_ID: String(o.clientId),
      NIF_CLIENT_SECRET: String(o.clientSecret),
      NIF_MEMBERSHIP_BASE_URL: down.info.url,
      NIF_SUBSCRIPTION_KEY: String(o.subscriptionKey),
      NIF_CLUB_TOKENS: JSON.stringify(o.clubTokens),
      NIF_MAX_RPS: String(configured),
    });
    child = pb.child;
    await fetch(down.control, { method: 'POST', signal: AbortSignal.timeout(5_000) });
    const loadBefore = load();
    const run = `lc-${Math.random().toString(36).slice(2, 8)}-`;
    const ids = Array.from({ length: n }, (_, i) => `${run}${i}`);
    const answers = new Map<string, number>();
    const burstAt = Date.now();
    const burst = Promise.all(ids.map(async (id) => answers.set(id, await deliver(pb!.base, 'nif', id))));
    await sleep(killAfterMs);
    kill(child);
    await burst;
    const before = await getJson<DownstreamView>(`${down.control}/?prefix=${run}`);
    const rest = n - before.distinct;
    const restartedAt = Date.now();
    child = pb.start();
    await untilAnswering(pb.base, 60_000);
    const readyAt = Date.now();
    const unanswered = ids.filter((id) => !((answers.get(id) ?? 0) >= 200 && (answers.get(id) ?? 0) < 300));
    await Promise.all(unanswered.map((id) => deliver(pb!.base, 'nif', id)));
    // Settled: every payment has a final status (an attempt cut by the kill may be `unknown`: never re-sent).
    const settleLimit = Date.now() + 20_000 + (rest / real) * 6_000;
    let settledAt: number | undefined;
    const final = ['posted', 'unknown', 'failed', 'held'];
    const status = new Map<string, string>();
    let statuses: string[] = [];
    while (Date.now() < settleLimit) {
      // As a caller polls: only the payments it is still waiting for (sixty reads four times a second loaded
      // the process being measured, 240 a second, until the last one settled).
      await Promise.all(
        ids.filter((id) => !final.includes(status.get(id) ?? '')).map(async (id) => {
          const res = await fetch(`${pb!.base}/v1/payments/nif/${id}`, { headers: { 'x-api-key': DEV_API_KEY }, signal: AbortSignal.timeout(5_000) }).catch(() => undefined);
          status.set(id, res?.status === 200 ? ((await res.json()) as { status: string }).status : 'no answer');
        }),
      );
      statuses = ids.map((id) => status.get(id) ?? 'no answer');
      if (statuses.every((s) => final.includes(s))) {
        settledAt = Date.now();
        break;
      }
      await sleep(250);
    }
    const view = await getJson<DownstreamView>(`${down.control}/?prefix=${run}`);
    const lastAccept = Math.max(...view.accepted);
    // --verbose: what the payments' histories hold after the restart (how the rest spent their time).
    let histories = '';
    if (values.verbose) {
      const tally: Record<string, number> = {};
      for (const id of ids) {
        const h = await getJson<{ history?: { at: string; event: string; detail?: string }[] }>(`${pb.base}/v1/payments/nif/${id}`, { 'x-api-key': DEV_API_KEY }).catch(() => ({ history: [] }));
        for (const e of h.history ?? []) {
          if (Date.parse(e.at) < restartedAt) continue;
          const key = `${e.event}${e.detail ? `: ${e.detail.slice(0, 60)}` : ''}`;
          tally[key] = (tally[key] ?? 0) + 1;
        }
      }
      histories = `; history entries after the restart: ${JSON.stringify(tally)}`;
    }
    const allowed = rest / real;
    const counts = statuses.reduce<Record<string, number>>((acc, s) => ((acc[s] = (acc[s] ?? 0) + 1), acc), {});
    if (settledAt === undefined) throw new Error(`crash: not all settled in time (${JSON.stringify(counts)}); output in ${dir}`);
    const seconds = (Math.max(settledAt, lastAccept) - restartedAt) / 1000;
    return {
      scenario: 'crash 10 vs 5',
      n,
      rate: real,
      configured,
      seconds,
      ratio: seconds / allowed,
      share429: view.rateLimited / (view.accepted.length + view.rateLimited),
      dynamoPerPayment: Number.NaN,
      eventsPerPayment: Number.NaN,
      firstAcceptMs: Number.NaN,
      gaps: 0,
      duplicates: view.duplicates,
      maxInAnyWindow: view.maxInAnyWindow,
      load: `${loadBefore} → ${load()}`,
      note: `${await learntRate(dir, 'nif', configured)}${values.verbose ? `; per second from the burst: ${perSecond([...view.accepted].sort((a, b) => a - b), burstAt)}; restarted at ${((restartedAt - burstAt) / 1000).toFixed(1)} s` : ''}; ${rest} had not reached NIF at the kill (${allowed.toFixed(1)} s at ${real}/s); answering ${((readyAt - restartedAt) / 1000).toFixed(1)} s after the restart; last acceptance ${((lastAccept - restartedAt) / 1000).toFixed(1)} s, all settled ${((settledAt - restartedAt) / 1000).toFixed(1)} s after it; ${JSON.stringify(counts)}${histories}`,
    };
  } finally {
    kill(child);
    kill(down.child);
    if (!values.keep) rmSync(dir, { recursive: true, force: true });
  }
}

async function bench(): Promise<void> {
  const scenarios = String(values.scenarios).split(',');
  const ns = String(values.n).split(',').map(Number);
  const runs = Number(values.runs);
  const concurrency = Number(values.concurrency);
  const rows: Row[] = [];
  const print = (r: Row) =>
    process.stdout.write(
      `${r.scenario.padEnd(16)} N=${String(r.n).padEnd(4)} ${r.configured}/s vs ${r.rate}/s  ${r.seconds.toFixed(2)} s  N/R ${(r.n / r.rate).toFixed(1)} s  ratio ${r.ratio.toFixed(3)}  429s ${(r.share429 * 100).toFixed(1)} %  ` +
        `ddb/payment ${Number.isNaN(r.dynamoPerPayment) ? '-' : `${r.dynamoPerPayment.toFixed(2)} (payments ${(r.dynamoPerPayment - r.eventsPerPayment).toFixed(2)}, events out ${r.eventsPerPayment.toFixed(2)})`}  first accept ${Number.isNaN(r.firstAcceptMs) ? '-' : `${r.firstAcceptMs} ms`}  gaps>150ms ${r.gaps}  dup ${r.duplicates}  max/s ${r.maxInAnyWindow}  load ${r.load}\n` +
        (r.note ? `${' '.repeat(18)}${r.note}\n` : ''),
    );
  for (let run = 0; run < runs; run++) {
    if (scenarios.includes('known')) for (const n of ns) rows.push(await drain('known 10', n, 10, 10, concurrency).then((r) => (print(r), r)));
    if (scenarios.includes('wrong')) rows.push(await drain('wrong 25 vs 10', 200, 25, 10, concurrency).then((r) => (print(r), r)));
    if (scenarios.includes('crash')) rows.push(await crash(60, 10, 5, 3_000).then((r) => (print(r), r)));
  }
  process.exitCode = rows.every((r) => r.duplicates === 0) ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------------
// The downstream, in a process of its own: `--serve cambio|nif --rate R --control-port P`. It prints its
// settings as one JSON line; GET http://127.0.0.1:P/?prefix=X answers what it accepted since the last POST.
async function serveDownstream(): Promise<void> {
  const rate = Number(values.rate);
  const accepted: number[] = [];
  const serve = values.serve;
  const cambio = serve === 'cambio' ? await new CambioSandbox({ ratePerSecond: rate, limiter: 'rolling' }).start(0) : undefined;
  const nif = serve === 'nif' ? await new NifSandbox({ ratePerSecond: rate, limiter: 'rolling' }).start(0) : undefined;
  (cambio ?? nif)!.onAccepted((at) => accepted.push(at));
  const control = createHttpServer((req, res) => {
    if (req.method === 'POST') {
      accepted.length = 0;
      if (cambio) cambio.stats = CambioSandbox.emptyStats();
      if (nif) nif.stats.rateLimited = 0;
      res.end('{}');
      return;
    }
    const prefix = new URL(req.url ?? '/', 'http://x').searchParams.get('prefix') ?? '';
    const keys: string[] = cambio
      ? Object.entries(cambio.stats.applied).flatMap(([k, n]) => Array<string>(n).fill(k))
      : nif!.payments.map((p) => p.externalReference ?? '');
    const mine = keys.filter((k) => k.startsWith(prefix));
    const distinct = new Set(mine).size;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ accepted, distinct, duplicates: mine.length - distinct, rateLimited: (cambio ?? nif)!.stats.rateLimited, maxInAnyWindow: (cambio ?? nif)!.stats.maxInAnyWindow }));
  });
  await new Promise<void>((r) => control.listen(Number(values['control-port']), '127.0.0.1', () => r()));
  process.stdout.write(`${JSON.stringify(cambio ? { url: cambio.url, tokenUrl: cambio.tokenUrl, options: cambio.options } : { url: nif!.url, tokenUrl: nif!.tokenUrl, options: nif!.options })}\n`);
  process.on('SIGTERM', () => process.exit(0));
}

if (values.serve) await serveDownstream();
else await bench();
