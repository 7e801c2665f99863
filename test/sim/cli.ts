import { KNOWN_DEFECTS, runSeed, type Feature, type SeedResult } from './sim.js';

/**
 * `npm run sim -- --seeds N [--payments 20] [--from S] [--enable feature,...]`: one summary line.
 * `npm run sim -- --seed S [--enable ...]`: that seed's trace, one line per event; exit 1 on a violation.
 * docs/simulation.md explains the model, the faults and the invariants.
 */
function usage(message: string): never {
  process.stderr.write(`${message}\nusage: npm run sim -- (--seeds N [--from S] | --seed S) [--payments N] [--enable ${KNOWN_DEFECTS.join(',')}|all]\n`);
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
  if (f === 'all') KNOWN_DEFECTS.forEach((k) => enable.add(k));
  else if ((KNOWN_DEFECTS as readonly string[]).includes(f)) enable.add(f as Feature);
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
const started = performance.now();
const failing: SeedResult[] = [];
const byInvariant = new Map<string, number[]>();
for (let s = from; s < from + (seeds as number); s++) {
  const r = await runSeed(s, { payments, enable });
  if (r.violations.length > 0) {
    failing.push(r);
    for (const inv of new Set(r.violations.map((v) => v.invariant))) byInvariant.set(inv, [...(byInvariant.get(inv) ?? []), s]);
  }
}
const secs = (performance.now() - started) / 1000;
const perMinute = Math.round(((seeds as number) / secs) * 60);
process.stdout.write(
  `seeds ${from}..${from + (seeds as number) - 1} (${seeds}), payments ${payments}${enable.size ? `, enabled ${[...enable].join(',')}` : ''}: ` +
    `${failing.length} failing seed(s), ${failing.reduce((n, r) => n + r.violations.length, 0)} violation(s), ${secs.toFixed(1)} s, ${perMinute} seeds/minute\n`,
);
for (const [inv, list] of byInvariant) process.stdout.write(`  ${inv}: ${list.length} seed(s), first ${list.slice(0, 5).join(', ')}\n`);
process.exit(failing.length > 0 ? 1 : 0);
