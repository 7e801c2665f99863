/**
 * How long `paybridge` takes per call (issue 15: about 2 s each), measured from outside as an operator
 * sees it: `node shared/cli/bin.mjs ...` against the running `npm start`, sequential runs, median and
 * worst. A script, not a test: timings depend on the machine and whatever else runs on it.
 *
 *   npx tsx test/bench/cli-timing.ts [--runs 7] [--root DIR] [-- payments list --status held]
 *
 * `--root` runs another checkout's bin (to compare before and after); PAYBRIDGE_LOCAL_FILE is passed on.
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { runs: { type: 'string' }, root: { type: 'string' } } });
const runs = Math.max(1, Math.min(50, Number(values.runs ?? 7)));
const bin = resolve(values.root ?? '.', 'shared/cli/bin.mjs');
const commands = positionals.length > 0 ? [positionals] : [['--help'], ['payments', 'list'], ['payments', 'list', '--status', 'held'], ['payments', 'list', '--status', 'held', '--system', 'cambio']];

function once(args: string[]): Promise<{ ms: number; code: number | null }> {
  const start = performance.now();
  const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
  return new Promise((done) =>
    child.on('close', (code) => {
      if (code !== 0) process.stderr.write(`paybridge ${args.join(' ')}: exit ${code}\n${err}`);
      done({ ms: performance.now() - start, code });
    }),
  );
}

for (const args of commands) {
  await once(args); // warms tsx's transform cache and the OS file cache; not counted
  const times: number[] = [];
  for (let i = 0; i < runs; i++) times.push((await once(args)).ms);
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)] ?? 0;
  process.stdout.write(`${`paybridge ${args.join(' ')}`.padEnd(60)} median ${Math.round(median)} ms, worst ${Math.round(times.at(-1) ?? 0)} ms (${runs} runs)\n`);
}
