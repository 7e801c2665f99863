/**
 * Issue 10's kill-and-restart run, as an operator would meet it: `npm start` (the same entry point,
 * `shared/local/start.ts`, in its own process group) takes a burst of NIF second-generation payments
 * under a 5/s limit, is killed with SIGKILL a few seconds in, and is started again on the same data
 * directory. Senders re-deliver what got no answer (webhooks are at least once). Prints how long until
 * every payment settled after the restart, each status, how many are `unknown`, and duplicates as NIF
 * saw them. The NIF sandbox runs in this process, so what it received survives the kill.
 *
 *   npm run bench:restart                    (defaults: 60 payments, 5/s, killed 3 s in)
 *   npm run bench:restart -- --n 60 --rate 5 --kill-after 3 --keep   (--keep: leave the data and the log)
 *
 * Settlement events out (issue 21) are checked in the same run: a receiver in this process (so what it got
 * survives the kill) is registered as the caller's endpoint before the burst; at the end every settled
 * payment must have its event (payment.posted, .held, .failed, .unknown), each transition one id, copies
 * only with the same id.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { Webhook } from 'standardwebhooks';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEV_API_KEY } from '../../shared/local/stack.js';
import { freePort, untilAnswering } from '../helpers/start.js';
import { NifSandbox } from '../../shared/systems/nif/simulator.js';

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '60' },
    rate: { type: 'string', default: '5' },
    'kill-after': { type: 'string', default: '3' },
    'settle-limit': { type: 'string', default: '180' },
    keep: { type: 'boolean', default: false },
  },
});
const N = Number(values.n);
const RATE = Number(values.rate);
const KILL_AFTER_MS = Number(values['kill-after']) * 1000;
const SETTLE_LIMIT_MS = Number(values['settle-limit']) * 1000;
const TERMINAL = new Set(['posted', 'unknown', 'failed', 'held']);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const YEAR = new Date().getFullYear();

const nif = await new NifSandbox({ ratePerSecond: RATE, limiter: 'rolling' }).start(0);
const dir = mkdtempSync(join(tmpdir(), 'paybridge-restart-'));
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const logFile = join(dir, 'npm-start.log');
const log = createWriteStream(logFile);
const env: NodeJS.ProcessEnv = {
  ...process.env,
  PORT: String(port),
  PAYBRIDGE_DATA_DIR: join(dir, 'dynalite'),
  PAYBRIDGE_LOCAL_FILE: join(dir, 'local.json'),
  LOG_LEVEL: 'info',
  LOG_FORMAT: 'json',
  NIF_BASE_URL: nif.url,
  NIF_TOKEN_URL: nif.tokenUrl,
  NIF_CLIENT_ID: nif.options.clientId,
  NIF_CLIENT_SECRET: nif.options.clientSecret,
  NIF_MEMBERSHIP_BASE_URL: nif.url,
  NIF_SUBSCRIPTION_KEY: nif.options.subscriptionKey,
  NIF_CLUB_TOKENS: JSON.stringify(nif.options.clubTokens),
  NIF_MAX_RPS: String(RATE),
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
};

function start(): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'shared/local/start.ts'], { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  return child;
}

const payment = (externalId: string) => ({
  amount: '450', externalId, isPaid: 'true', orgId: '7896', paidDate: `${YEAR}-05-08`, paidToOrgId: '4568',
  paymentCategory: 'Club membership', paymentTypeId: 0, periodFrom: `${YEAR}-05-08`, periodTo: `${YEAR}-06-08`, personId: '8675682',
});

/** One delivery; the HTTP status, or 0 when the connection failed (the process was killed under it). */
async function deliver(externalId: string): Promise<number> {
  try {
    const res = await fetch(`${base}/v1/nif/payments`, {
      method: 'POST',
      headers: { 'x-api-key': DEV_API_KEY, 'content-type': 'application/json' },
      body: JSON.stringify(payment(externalId)),
      signal: AbortSignal.timeout(30_000),
    });
    await res.text();
    return res.status;
  } catch {
    return 0;
  }
}

async function status(externalId: string): Promise<string | undefined> {
  try {
    const res = await fetch(`${base}/v1/payments/nif/${encodeURIComponent(externalId)}`, { headers: { 'x-api-key': DEV_API_KEY }, signal: AbortSignal.timeout(5_000) });
    return res.status === 200 ? ((await res.json()) as { status: string }).status : `http ${res.status}`;
  } catch {
    return undefined;
  }
}

/** The caller's event receiver: every delivery, by event id, with its signature checked. */
const events = new Map<string, { type: string; key: string; revision: number; sequence: number; copies: number; verified: boolean }>();
let eventSecret = '';
const eventReceiver = createHttpServer((req, res) => {
  let body = '';
  req.on('data', (c: Buffer) => (body += c.toString('utf8')));
  req.on('end', () => {
    let verified = true;
    try {
      new Webhook(eventSecret).verify(body, req.headers as Record<string, string>);
    } catch {
      verified = false;
    }
    const e = JSON.parse(body) as { id: string; type: string; data: { key: string; revision: number; sequence: number } };
    const seen = events.get(e.id);
    if (seen) seen.copies++;
    else events.set(e.id, { type: e.type, key: e.data.key, revision: e.data.revision, sequence: e.data.sequence, copies: 1, verified });
    res.writeHead(204).end();
  });
});
await new Promise<void>((resolve) => eventReceiver.listen(0, '127.0.0.1', resolve));
const eventReceiverUrl = `http://127.0.0.1:${(eventReceiver.address() as { port: number }).port}/events`;

async function registerEndpoint(): Promise<void> {
  const res = await fetch(`${base}/v1/event-endpoints`, {
    method: 'POST',
    headers: { 'x-api-key': DEV_API_KEY, 'content-type': 'application/json' },
    body: JSON.stringify({ url: eventReceiverUrl, description: 'bench:restart' }),
    signal: AbortSignal.timeout(10_000),
  });
  if (res.status !== 201) throw new Error(`registering the event receiver: HTTP ${res.status} ${await res.text()}`);
  eventSecret = ((await res.json()) as { secret: string }).secret;
}

const kill = (child: ChildProcess) => {
  try {
    process.kill(-(child.pid as number), 'SIGKILL');
  } catch {
    /* already gone */
  }
};

const run = Math.random().toString(36).slice(2, 8);
const ids = Array.from({ length: N }, (_, i) => `rs-${run}-${i}`);
let child = start();
try {
  await untilAnswering(base, 60_000, `; its output is in ${logFile}`);
  await registerEndpoint();
  process.stdout.write(`npm start on ${base}, NIF sandbox at ${RATE}/s (rolling window); ${N} payments, killed ${KILL_AFTER_MS / 1000} s in\n`);

  // The burst: all N at once, as a POS flushing its buffer would. The kill lands mid-way.
  const burstStart = Date.now();
  const answers = new Map<string, number>();
  const burst = Promise.all(ids.map(async (id) => answers.set(id, await deliver(id))));
  await sleep(KILL_AFTER_MS);
  const sentBeforeKill = nif.payments.filter((p) => p.externalReference?.startsWith(`rs-${run}-`)).length;
  kill(child);
  const killedAt = Date.now();
  await burst;
  const unanswered = ids.filter((id) => !(answers.get(id)! >= 200 && answers.get(id)! < 300));
  process.stdout.write(`killed at ${((killedAt - burstStart) / 1000).toFixed(1)} s: ${sentBeforeKill} had reached NIF, ${N - unanswered.length} deliveries answered 2xx, ${unanswered.length} got no answer\n`);

  child = start();
  const restartedAt = Date.now();
  await untilAnswering(base, 60_000, `; its output is in ${logFile}`);
  const readyAt = Date.now();
  // Senders deliver again what got no answer.
  const redelivered = await Promise.all(unanswered.map((id) => deliver(id)));
  const redeliveryReplies = redelivered.reduce<Record<number, number>>((acc, s) => ((acc[s] = (acc[s] ?? 0) + 1), acc), {});

  let statuses = new Map<string, string | undefined>();
  let settledAt: number | undefined;
  while (Date.now() - restartedAt < SETTLE_LIMIT_MS) {
    statuses = new Map(await Promise.all(ids.map(async (id) => [id, await status(id)] as const)));
    if ([...statuses.values()].every((s) => s !== undefined && TERMINAL.has(s))) {
      settledAt = Date.now();
      break;
    }
    await sleep(500);
  }
  // Anything still queued would show itself as a duplicate now.
  await sleep(3_000);

  // Events: each settled payment's status event delivered (the retry schedule's first steps are 5 s apart).
  const EVENT_OF: Record<string, string> = { posted: 'payment.posted', held: 'payment.held', failed: 'payment.failed', unknown: 'payment.unknown' };
  const missing = () => ids.filter((id) => { const type = EVENT_OF[statuses.get(id) ?? '']; return type !== undefined && ![...events.values()].some((e) => e.key === id && e.type === type); });
  const eventsUntil = Date.now() + 60_000;
  while (missing().length > 0 && Date.now() < eventsUntil) await sleep(500);
  const ours = [...events.values()].filter((e) => ids.includes(e.key));
  const perTransition = new Map<string, number>();
  // A revision posts once: two payment.posted ids for one (key, revision) would be one transition reported twice.
  for (const e of ours.filter((x) => x.type === 'payment.posted')) perTransition.set(`${e.key}|${e.revision}`, (perTransition.get(`${e.key}|${e.revision}`) ?? 0) + 1);
  const twoIds = [...perTransition.values()].filter((n) => n > 1).length;
  const eventCopies = ours.reduce((sum, e) => sum + e.copies - 1, 0);
  const eventsLost = missing().length;

  const counts = [...statuses.values()].reduce<Record<string, number>>((acc, s) => ((acc[s ?? 'no answer'] = (acc[s ?? 'no answer'] ?? 0) + 1), acc), {});
  const received = new Map<string, number>();
  for (const p of nif.payments) if (p.externalReference?.startsWith(`rs-${run}-`)) received.set(p.externalReference, (received.get(p.externalReference) ?? 0) + 1);
  const duplicates = [...received.values()].reduce((sum, k) => sum + Math.max(0, k - 1), 0);
  const unknown = ids.filter((id) => statuses.get(id) === 'unknown');
  const unknownReached = unknown.filter((id) => received.has(id)).length;
  const notPosted = ids.filter((id) => !received.has(id) && statuses.get(id) === 'posted').length;

  process.stdout.write(
    [
      `restart: answering after ${((readyAt - restartedAt) / 1000).toFixed(1)} s; redelivered ${unanswered.length} (${JSON.stringify(redeliveryReplies)})`,
      settledAt === undefined
        ? `NOT all settled within ${SETTLE_LIMIT_MS / 1000} s of the restart`
        : `all ${N} settled ${((settledAt - restartedAt) / 1000).toFixed(1)} s after the restart`,
      `statuses: ${JSON.stringify(counts)}`,
      `unknown: ${unknown.length} (${unknownReached} of them had reached NIF: sent before the kill, answer lost with the process)`,
      `NIF received ${received.size} distinct payments, ${duplicates} duplicates; posted without reaching NIF: ${notPosted}; 429s: ${nif.stats.rateLimited}; most in any second: ${nif.stats.maxInAnyWindow}`,
      `events out: ${ours.length} event ids for these payments (${ours.filter((e) => !e.verified).length} with a bad signature), ${eventsLost} settled payments without their event, ${twoIds} posted revisions with more than one payment.posted id, ${eventCopies} copies of an id delivered again`,
      `npm start output: ${logFile}`,
    ].join('\n') + '\n',
  );
  process.exitCode = settledAt !== undefined && duplicates === 0 && notPosted === 0 && eventsLost === 0 && twoIds === 0 ? 0 : 1;
} finally {
  kill(child);
  await nif.close();
  eventReceiver.closeAllConnections();
  await new Promise<void>((resolve) => eventReceiver.close(() => resolve()));
  log.end();
  if (process.exitCode === 0 && !values.keep) rmSync(dir, { recursive: true, force: true });
}
