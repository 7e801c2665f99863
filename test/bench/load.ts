/**
 * `npm run load`: the highest intake rate the local stack holds on this machine, then that rate held.
 *
 * The whole stack runs in this process as `npm start` runs it (dynalite in-process, the local queue and
 * workers, the sweep every minute), logs off. Payments go to the Cambio route; its sandbox answers up to
 * 100,000 requests/s (a token bucket) and CAMBIO_MAX_RPS is 1000, the most config.ts allows, so the
 * downstream is not what limits: this measures paybridge's own work per payment (authentication,
 * validation, the claim, the send, the settle, and the queue for what the pacing holds back). A second
 * process (test/bench/load-client.ts) sends at a fixed rate, a share of payments twice.
 *
 * First a ramp: short steps at rising rates until one is not held. A step is held when every request got
 * a 2xx, none had to be skipped for too many in flight, 99 % were answered within 1 s, and the queue was
 * empty again within 5 s of the step's end (no backlog growing). Then the best held rate for --duration
 * seconds, with the same checks, and the sandbox's count of each key: a payment delivered twice must
 * reach it once, and every accepted one must reach it.
 *
 * Before either, a warm-up step (--warmup seconds at --warmup-rate, printed, not judged): a stack that has
 * just started compiles its hot paths during its first few hundred payments, and a first step run cold
 * measured that instead (main and 5795570 alike, 2026-12-07: 100/s answered 88.9 % within 1 s cold, then
 * 110/s to 215/s held). `--warmup 0` leaves it out.
 *
 *   npm run load -- [--duration 60] [--rate R (skip the ramp)] [--start 100] [--factor 1.1] [--step 5]
 *                   [--max 3000] [--dup 0.1] [--max-in-flight 2000] [--warmup 5] [--warmup-rate 50]
 *                   [--relay open|closed (events out's local relay closed: events stamped, left pending, as the
 *                   intake function leaves them to the pipe in AWS; to see what events out costs here)]
 */
import { fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DEV_API_KEY, startStack, type Stack } from '../../shared/local/stack.js';
import { silenceSdkNodeVersionWarning } from '../../shared/quiet.js';
import type { StepOrder, StepReport } from './load-client.js';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '60' },
    rate: { type: 'string' },
    start: { type: 'string', default: '100' },
    factor: { type: 'string', default: '1.1' },
    step: { type: 'string', default: '5' },
    max: { type: 'string', default: '3000' },
    dup: { type: 'string', default: '0.1' },
    'max-in-flight': { type: 'string', default: '2000' },
    warmup: { type: 'string', default: '5' },
    'warmup-rate': { type: 'string', default: '50' },
    relay: { type: 'string', default: 'open' },
  },
});
const num = (name: string, text: string | undefined, min: number): number => {
  const n = Number(text);
  if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number of at least ${min}, not "${text}"`);
  return n;
};
const DURATION_S = num('duration', values.duration, 0);
const FIXED_RATE = values.rate === undefined ? undefined : num('rate', values.rate, 1);
const START = num('start', values.start, 1);
const FACTOR = num('factor', values.factor, 1.01);
const STEP_S = num('step', values.step, 1);
const MAX = num('max', values.max, 1);
const DUP = num('dup', values.dup, 0);
const MAX_IN_FLIGHT = num('max-in-flight', values['max-in-flight'], 1);
const WARMUP_S = num('warmup', values.warmup, 0);
const WARMUP_RATE = num('warmup-rate', values['warmup-rate'], 1);
if (values.relay !== 'open' && values.relay !== 'closed') throw new Error(`--relay must be open or closed, not "${values.relay}"`);
const RELAY_CLOSED = values.relay === 'closed';

interface Verdict {
  report: StepReport;
  acceptedPerSecond: number;
  p50: number;
  p99: number;
  errors: Record<string, number>;
  duplicates: number;
  lost: number;
  drainMs: number;
  cpu: number;
  held: boolean;
  why: string[];
}

const percentile = (xs: number[], p: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted.length === 0 ? NaN : (sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number);
};

function client() {
  const child = fork(fileURLToPath(new URL('./load-client.ts', import.meta.url)), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const run = (order: StepOrder) =>
    new Promise<StepReport>((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`the load client exited (${code}) during a step`));
      child.once('exit', onExit);
      child.once('message', (report: StepReport) => {
        child.off('exit', onExit);
        resolve(report);
      });
      child.send(order);
    });
  return { run, stop: () => child.send({ type: 'stop' }) };
}

async function step(stack: Stack, send: ReturnType<typeof client>['run'], rate: number, seconds: number, tag: string): Promise<Verdict> {
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  const report = await send({ type: 'step', url: stack.url, apiKey: DEV_API_KEY, rate, durationMs: seconds * 1000, dup: DUP, prefix: `load-${tag}`, maxInFlight: MAX_IN_FLIGHT });
  const cpuUsed = process.cpuUsage(cpu0);
  const cpu = (cpuUsed.user + cpuUsed.system) / 1000 / (performance.now() - wall0);
  const drained0 = performance.now();
  const drained = await stack.queue.idle(60_000);
  const drainMs = drained ? performance.now() - drained0 : Infinity;
  // A duplicate still queued shows itself before the count.
  await new Promise((r) => setTimeout(r, 1_000));
  const applied = stack.cambio?.stats.applied ?? {};
  const duplicates = report.accepted.reduce((sum, key) => sum + Math.max(0, (applied[key] ?? 0) - 1), 0);
  const lost = report.accepted.filter((key) => (applied[key] ?? 0) === 0).length;
  const errors = Object.fromEntries(Object.entries(report.byStatus).filter(([s]) => !/^2\d\d$/.test(s)));
  const answeredInTime = report.latencies.filter((ms) => ms <= 1_000).length / Math.max(1, report.requests);
  const why: string[] = [];
  if (Object.keys(errors).length > 0) why.push(`non-2xx replies ${JSON.stringify(errors)}`);
  if (report.skipped > 0) why.push(`${report.skipped} payments not sent: ${MAX_IN_FLIGHT} requests already in flight`);
  if (answeredInTime < 0.99) why.push(`only ${(answeredInTime * 100).toFixed(1)} % answered within 1 s`);
  if (drainMs > 5_000) why.push(`the queue took ${drained ? `${(drainMs / 1000).toFixed(1)} s` : 'over 60 s'} to empty after the step`);
  if (duplicates > 0) why.push(`${duplicates} duplicate posts`);
  if (lost > 0) why.push(`${lost} accepted payments never reached the sandbox`);
  return {
    report,
    acceptedPerSecond: report.accepted.length / seconds,
    p50: percentile(report.latencies, 50),
    p99: percentile(report.latencies, 99),
    errors,
    duplicates,
    lost,
    drainMs,
    cpu,
    held: why.length === 0,
    why,
  };
}

const line = (v: Verdict) =>
  `${String(v.report.rate).padStart(5)}/s for ${v.report.durationMs / 1000} s: accepted ${v.acceptedPerSecond.toFixed(1)}/s, p50 ${v.p50.toFixed(1)} ms, p99 ${v.p99.toFixed(1)} ms, ` +
  `replies ${Object.entries(v.report.byStatus).sort().map(([s, n]) => `${s}×${n}`).join(' ')}, stack CPU ${(v.cpu * 100).toFixed(0)} % of one core` +
  `${v.held ? ' - held' : ` - NOT held: ${v.why.join('; ')}`}`;

async function main(): Promise<void> {
  silenceSdkNodeVersionWarning();
  const stack = await startStack({
    port: 0,
    env: { LOG_LEVEL: 'silent', API_KEYS: DEV_API_KEY, CAMBIO_MAX_RPS: '1000' },
    cambio: { ratePerSecond: 100_000, limiter: 'bucket' },
    kontantanalysSyncIntervalMs: false,
  });
  if (RELAY_CLOSED) await stack.events.relay.close();
  const c = client();
  const run = randomUUID().slice(0, 8);
  const out = (text: string) => process.stdout.write(`${text}\n`);
  out(`paybridge load: POST /v1/cambio/payment-notices into the local stack (one process: routes, dynalite, queue, workers),`);
  out(`Cambio sandbox at 100,000 requests/s, CAMBIO_MAX_RPS 1000, ${Math.round(DUP * 100)} % of payments delivered twice`);
  if (RELAY_CLOSED) out(`events out's local relay CLOSED (--relay closed): events stamped and left pending`);
  try {
    if (WARMUP_S > 0) out(`warm-up (not judged): ${line(await step(stack, c.run, WARMUP_RATE, WARMUP_S, `${run}-warmup`))}`);
    let best = FIXED_RATE;
    if (best === undefined) {
      out(`ramp, ${STEP_S} s a step from ${START}/s, x${FACTOR} each:`);
      let rate = START;
      for (let i = 0; rate <= MAX && i < 50; i++, rate = Math.round(rate * FACTOR)) {
        const v = await step(stack, c.run, rate, STEP_S, `${run}-ramp${i}`);
        out(`  ${line(v)}`);
        if (!v.held) break;
        best = rate;
      }
      if (best === undefined) {
        out(`no rate from ${START}/s up was held`);
        process.exitCode = 1;
        return;
      }
    }
    if (DURATION_S === 0) {
      out(`best held rate in the ramp: ${best}/s (no hold asked: --duration 0)`);
      return;
    }
    out(`hold: ${best}/s for ${DURATION_S} s`);
    const v = await step(stack, c.run, best, DURATION_S, `${run}-hold`);
    const r = v.report;
    const rows: [string, string][] = [
      ['payments accepted', `${r.accepted.length} of ${r.due} in ${DURATION_S} s: ${v.acceptedPerSecond.toFixed(1)}/s`],
      ['requests (incl. second deliveries)', `${r.requests}: ${Object.entries(r.byStatus).sort().map(([s, n]) => `${s}×${n}`).join(' ')}`],
      ['intake latency (request to reply)', `p50 ${v.p50.toFixed(1)} ms, p99 ${v.p99.toFixed(1)} ms, max ${Math.max(...r.latencies).toFixed(1)} ms`],
      ['errors (non-2xx by status)', Object.keys(v.errors).length === 0 ? 'none' : Object.entries(v.errors).map(([s, n]) => `${s}×${n}`).join(' ')],
      ['delivered twice', `${r.doubled.length} payments (half at once, half 500 ms later)`],
      ['duplicates at the sandbox', `${v.duplicates}`],
      ['accepted but never posted', `${v.lost}`],
      ['queue empty after the hold', Number.isFinite(v.drainMs) ? `${(v.drainMs / 1000).toFixed(1)} s` : 'not within 60 s'],
      ['requests in flight at most', `${r.maxInFlight}`],
      ['stack process CPU', `${(v.cpu * 100).toFixed(0)} % of one core`],
      ['verdict', v.held ? 'held' : `NOT held: ${v.why.join('; ')}`],
    ];
    const width = Math.max(...rows.map(([k]) => k.length));
    for (const [k, text] of rows) out(`  ${k.padEnd(width)}  ${text}`);
    process.exitCode = v.held ? 0 : 1;
  } finally {
    c.stop();
    await stack.close();
  }
}

main().catch((err: Error) => {
  process.stderr.write(`load failed: ${err.stack}\n`);
  process.exit(2);
});
