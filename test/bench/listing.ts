// `npm run bench:listing` (issue 22): `paybridge payments list` with 10,000 records in the table. Seeds a
// local stack's dynalite (in memory, loopback) with RECORDS payments of mixed systems, statuses and
// callers, then times a page of 50 for several filters, in process (the listing's own cost) and as the
// command a person runs (`node shared/cli/bin.mjs`, process start included), and counts the DynamoDB
// requests each page made, at dynalite. Node's own start and the CLI's `--help` are timed first, so a
// command's wall time can be told apart from the listing's.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchWriteCommand } from '@aws-sdk/lib-dynamodb';
import { runCli, type Io } from '../../shared/cli/main.js';
import type { CliContext } from '../../shared/cli/context.js';
import { STATUSES, type PaymentRecord, type Status } from '../../shared/core/types.js';
import { startStack } from '../../shared/local/stack.js';
import { documentClient, makeDynamoClient } from '../../shared/store/dynamo.js';
import { withIndexes } from '../../shared/store/indexes.js';

const RECORDS = Number(process.env.RECORDS ?? 10_000);
const SYSTEMS = ['cambio', 'brp', 'nif', 'kontantanalys'];
let counting = false;
let requests = 0;
const stack = await startStack({ port: 0, sweepIntervalMs: false, kontantanalysSyncIntervalMs: false, bootSweep: false, env: { ...process.env, LOG_LEVEL: 'silent' }, onDynamoRequest: () => void (counting && requests++) });
const doc = documentClient(makeDynamoClient({ endpoint: stack.dynamoEndpoint }));
const table = stack.deps.config.TABLE_NAME;
const base = Date.now() - RECORDS * 1000;
const started = Date.now();
for (let i = 0; i < RECORDS; i += 25) {
  const items = [];
  for (let j = i; j < Math.min(RECORDS, i + 25); j++) {
    // Mostly posted, as a real table is; a few of each other status.
    const status: Status = j % 50 === 0 ? (STATUSES[1 + ((j / 50) % 5)] as Status) : 'posted';
    const system = SYSTEMS[j % SYSTEMS.length] as string;
    const key = `bench-${String(j).padStart(6, '0')}`;
    const at = base + j * 1000;
    const r: PaymentRecord = {
      pk: `${system}#default#${key}`, system, tenant: 'default', key, status, version: 1, revision: 1, budgetFrom: at, payloadHash: 'h', request: { amount: 100 + j },
      attempts: 1, failures: 0, checkpoints: {}, history: [{ at: new Date(at).toISOString(), event: 'received' }], correlationId: key, caller: `pos-${j % 7}`,
      createdAt: new Date(at).toISOString(), createdMs: at, updatedAt: new Date(at).toISOString(), ttl: 0,
    };
    items.push({ PutRequest: { Item: withIndexes(r, stack.deps.config.INDEX_SHARDS, at) } });
  }
  await doc.send(new BatchWriteCommand({ RequestItems: { [table]: items } }));
}
console.log(`seeded ${RECORDS} records in ${((Date.now() - started) / 1000).toFixed(1)} s`);

const io: Io = { out: () => undefined, err: (l) => console.error(l), progress: () => undefined, progressEnd: () => undefined, interactive: false, confirm: async () => false, clock: Date.now };
const ctx = async (): Promise<CliContext> => ({ where: 'bench', store: stack.deps.store, queue: stack.queue, fence: () => stack.deps.pacer.mintFence(), deadLetters: { count: async () => 0, redrive: async () => 0 } });
const dir = mkdtempSync(join(tmpdir(), 'pb-listing-'));
const localFile = join(dir, 'local.json');
writeFileSync(localFile, JSON.stringify({ pid: process.pid, apiUrl: stack.url, apiKey: 'x', dynamoEndpoint: stack.dynamoEndpoint, tableName: table, sandboxes: {} }));

const filters: [string, string[]][] = [
  ['no filter', []],
  ['--status held', ['--status', 'held']],
  ['--system brp', ['--system', 'brp']],
  ['--status failed --system cambio', ['--status', 'failed', '--system', 'cambio']],
  ['--caller pos-3', ['--caller', 'pos-3']],
  ['--key-prefix bench-0099', ['--key-prefix', 'bench-0099']],
];
/** Wall time of a command, in ms. Not spawnSync: dynalite answers from this very process, whose event loop must keep running. */
async function wall(args: string[]): Promise<number> {
  const t = performance.now();
  const child = spawn(process.execPath, args, { env: { ...process.env, PAYBRIDGE_LOCAL_FILE: localFile, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' }, stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) console.error(err);
  return performance.now() - t;
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const timesOf = async (args: string[], n: number) => median(await Array.from({ length: n }).reduce<Promise<number[]>>(async (acc) => [...(await acc), await wall(args)], Promise.resolve([])));

// What a command's wall time is made of, before any listing: Node starting, and the CLI starting (its bundle
// checked against the sources, its arguments parsed, no AWS SDK loaded) for `--help`.
await wall(['shared/cli/bin.mjs', '--help']); // builds the CLI bundle if the sources changed, not timed
console.log(`node -e '' (Node alone): ${(await timesOf(['-e', ''], 5)).toFixed(0)} ms, median of 5`);
console.log(`node shared/cli/bin.mjs --help: ${(await timesOf(['shared/cli/bin.mjs', '--help'], 5)).toFixed(0)} ms, median of 5`);
console.log('filter | in process (ms, median of 5) | DynamoDB requests | `node shared/cli/bin.mjs` wall (ms, median of 3)');
for (const [name, argv] of filters) {
  const times: number[] = [];
  let made = 0;
  for (let k = 0; k < 5; k++) {
    requests = 0;
    counting = true;
    const t = performance.now();
    await runCli(['payments', 'list', '--limit', '50', ...argv], ctx, io);
    times.push(performance.now() - t);
    counting = false;
    made = requests;
  }
  const walls = await timesOf(['shared/cli/bin.mjs', 'payments', 'list', '--limit', '50', ...argv], 3);
  console.log(`${name} | ${median(times).toFixed(0)} | ${made} | ${walls.toFixed(0)}`);
}
await stack.close();
