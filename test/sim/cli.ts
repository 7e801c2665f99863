import { fork } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { FEATURES, runSeed, type Feature } from './sim.js';

/**
 * `npm run sim -- --seeds N [--payments 20] [--from S] [--enable feature,...]`: one summary line.
 * `npm run sim -- --seed S [--enable ...]`: that seed's trace, one line per event; exit 1 on a violation.
 * docs/simulation.md explains the model, the faults and the invariants.
 */
function usage(message: string): never {
  process.stderr.write(`${message}\nusage: npm run sim -- (--seeds N [--from S] [--jobs J] | --seed S) [--payments N] [--enable ${FEATURES.join(',')}|all]\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const v = args[i + 1];
  if (v === undefined || v.startsWith('--')) usage(`--${name} needs a value`);
  return v;
};
const int = (name: string, fallback?: number): number | undefined => {
  const v = opt(name);
  if (v === undefined) return fallback;
  if (!/^\d+$/.test(v)) usage(`--${name} must be a whole number, not "${v}"`);
  return Number(v);
};

const enableArg = opt('enable');
const enable = new Set<Feature>();
for (const f of enableArg ? enableArg.split(',') : []) {
  if (f === 'all') FEATURES.forEach((k) => enable.add(k));
  else if ((FEATURES as readonly string[]).includes(f)) enable.add(f as Feature);
  else usage(`unknown feature "${f}"`);
}
const payments = int('payments', 20) as number;
const seed = int('seed');
const seeds = int('seeds');
if ((seed === undefined) === (seeds === undefined)) usage('give either --seed S or --seeds N');

if (seed !== undefined) {
  const r = await runSeed(seed, { payments, enable, trace: true });
  for (const line of r.lines ?? []) process.stdout.write(`${line}\n`);
  process.stdout.write(`seed ${seed}: ${r.steps} steps, statuses ${JSON.stringify(r.statuses)}, ${r.violations.length} violation(s)\n`);
  for (const v of r.violations) process.stdout.write(`VIOLATION ${v.invariant}: ${v.detail}\n`);
  process.exit(r.violations.length > 0 ? 1 : 0);
}

const from = int('from', 1) as number;
const count = seeds as number;

/** A worker process's share: its seeds' failures as one JSON line on stdout. */
async function runRange(first: number, n: number): Promise<{ failing: { seed: number; invariants: string[]; violations: number; first: string }[]; cpuMs: number; events: Record<string, number>; turns: { taken: number; givenOn: number; seeds: number } }> {
  const failing: { seed: number; invariants: string[]; violations: number; first: string }[] = [];
  const cpu = process.cpuUsage();
  const events: Record<string, number> = {};
  const turns = { taken: 0, givenOn: 0, seeds: 0 };
  for (let s = first; s < first + n; s++) {
    const r = await runSeed(s, { payments, enable });
    for (const [k, v] of Object.entries(r.events ?? {})) events[k] = (events[k] ?? 0) + v;
    turns.taken += r.turns?.taken ?? 0;
    turns.givenOn += r.turns?.givenOn ?? 0;
    if ((r.turns?.taken ?? 0) > 0) turns.seeds++;
    if (r.violations.length > 0) failing.push({ seed: s, invariants: [...new Set(r.violations.map((v) => v.invariant))], violations: r.violations.length, first: `${r.violations[0]?.invariant}: ${r.violations[0]?.detail}` });
  }
  const used = process.cpuUsage(cpu);
  return { failing, cpuMs: (used.user + used.system) / 1000, events, turns };
}

const worker = opt('worker-range');
if (worker !== undefined) {
  const [a, b] = worker.split(':').map(Number) as [number, number];
  process.stdout.write(`${JSON.stringify(await runRange(a, b))}\n`);
  process.exit(0);
}

// Seeds are independent: one process per core (`--jobs`, default all of them) runs a share of them.
const jobs = Math.max(1, Math.min(int('jobs', availableParallelism()) as number, count));
const started = performance.now();
const shares = Array.from({ length: jobs }, (_, j) => {
  const lo = from + Math.floor((count * j) / jobs);
  const hi = from + Math.floor((count * (j + 1)) / jobs);
  return { lo, n: hi - lo };
});
const results = await Promise.all(
  shares.map(({ lo, n }) =>
    jobs === 1
      ? runRange(lo, n)
      : new Promise<Awaited<ReturnType<typeof runRange>>>((resolve, reject) => {
          const child = fork(process.argv[1] as string, [...args, '--worker-range', `${lo}:${n}`], { execArgv: process.execArgv, stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
          let out = '';
          child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
          child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`simulation worker exited with ${code}`))));
        }),
  ),
);
const failing = results.flatMap((r) => r.failing).sort((a, b) => a.seed - b.seed);
const byInvariant = new Map<string, number[]>();
for (const f of failing) for (const inv of f.invariants) byInvariant.set(inv, [...(byInvariant.get(inv) ?? []), f.seed]);
const secs = (performance.now() - started) / 1000;
const perMinute = Math.round((count / secs) * 60);
process.stdout.write(
  `seeds ${from}..${from + count - 1} (${count}), payments ${payments}${enable.size ? `, enabled ${[...enable].join(',')}` : ''}: ` +
    `${failing.length} failing seed(s), ${failing.reduce((n, r) => n + r.violations, 0)} violation(s), ${secs.toFixed(1)} s, ${perMinute} seeds/minute (${jobs} process${jobs > 1 ? 'es' : ''}, ${(results.reduce((n, r) => n + r.cpuMs, 0) / count).toFixed(1)} ms CPU per seed)\n`,
);
// What the events-out part exercised, summed over the seeds (test/sim/outbox.ts: EventCounts).
const eventTotals: Record<string, number> = {};
for (const r of results) for (const [k, v] of Object.entries(r.events)) eventTotals[k] = (eventTotals[k] ?? 0) + v;
process.stdout.write(`  events: ${Object.entries(eventTotals).map(([k, v]) => `${k}=${v}`).join(' ')}\n`);
// Queued claims' turns (EngineDeps.queuedClaims): how many were taken, in how many seeds, and how many a slow write gave on.
const sum = (k: 'taken' | 'givenOn' | 'seeds') => results.reduce((n, r) => n + r.turns[k], 0);
process.stdout.write(`  queued-claim turns: taken=${sum('taken')} in ${sum('seeds')} seed(s), givenOn=${sum('givenOn')}\n`);
for (const [inv, list] of byInvariant) process.stdout.write(`  ${inv}: ${list.length} seed(s), first ${list.slice(0, 5).join(', ')}\n`);
// `--list`: every failing seed with its first violation.
if (args.includes('--list')) for (const f of failing) process.stdout.write(`  seed ${f.seed}: ${f.first}\n`);
process.exit(failing.length > 0 ? 1 : 0);
