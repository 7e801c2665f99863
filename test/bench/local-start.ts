/**
 * `npx tsx test/bench/local-start.ts -- --runs 5`: how long `npm start` takes to be ready with each local
 * retry queue (issue 23 item 5): the in-process queue (the default) and `LOCAL_QUEUE=sqs` (fauxqs and the
 * poller, shared/local/sqs-poller.ts). Each run is a fresh process started as `npm start` starts it (tsx
 * shared/local/start.ts) on a fresh data folder and a free loopback port, timed from the spawn until it has written
 * its local file (after the stack is up, just before the banner), then stopped. The two kinds alternate, so
 * load from elsewhere on the machine slows both alike; the medians are printed.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const ROOT = resolve(new URL('../..', import.meta.url).pathname);
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');

/** A loopback port free a moment ago (PORT must name one: 0 is refused). */
function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const server = createServer();
    server.once('error', rej);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (address && typeof address === 'object' ? res(address.port) : rej(new Error('no port'))));
    });
  });
}

async function startOnce(kind: 'memory' | 'sqs'): Promise<number> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'paybridge-start-'));
  const localFile = join(dir, 'local.json');
  const t0 = performance.now();
  const child = spawn(TSX, ['shared/local/start.ts'], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: {
      PATH: process.env.PATH ?? '',
      // A free loopback port each run (the stack binds 127.0.0.1 only).
      PORT: String(port),
      PAYBRIDGE_DATA_DIR: join(dir, 'dynalite'),
      PAYBRIDGE_LOCAL_FILE: localFile,
      LOG_FORMAT: 'json',
      LOG_LEVEL: 'silent',
      ...(kind === 'sqs' ? { LOCAL_QUEUE: 'sqs' } : {}),
    },
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  try {
    // Bounded: a start that takes a minute is a failure here, not a figure.
    for (let i = 0; i < 6_000 && !existsSync(localFile); i++) {
      if (child.exitCode !== null) throw new Error(`npm start (${kind}) exited with ${child.exitCode}: ${stderr.slice(0, 500)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    if (!existsSync(localFile)) throw new Error(`npm start (${kind}) was not ready within 60 s`);
    return performance.now() - t0;
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    if (child.exitCode === null) child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] as number;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });
  const runs = Math.max(1, Number(values.runs));
  const times = { memory: [] as number[], sqs: [] as number[] };
  // One of each first, untimed: tsx's compile cache and the disk cache are then warm for both.
  await startOnce('memory');
  await startOnce('sqs');
  for (let i = 0; i < runs; i++) {
    for (const kind of i % 2 === 0 ? (['memory', 'sqs'] as const) : (['sqs', 'memory'] as const)) times[kind].push(await startOnce(kind));
  }
  const fmt = (xs: number[]) => `median ${median(xs).toFixed(0)} ms (min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)})`;
  process.stdout.write(`npm start until ready, ${runs} runs each, alternating:\n  in-process queue (default): ${fmt(times.memory)}\n  LOCAL_QUEUE=sqs (fauxqs):   ${fmt(times.sqs)}\n`);
}

main().catch((err: Error) => {
  process.stderr.write(`local-start failed: ${err.stack}\n`);
  process.exit(2);
});
