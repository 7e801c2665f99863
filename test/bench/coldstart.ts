/**
 * `npm run coldstart`: builds every function exactly as `serverless package` does (the esbuild settings are
 * read from serverless.yml's `custom.esbuild`, so they cannot drift from the deployed ones), then prints per
 * function the zip size and the time a fresh `node` process takes to import the built handler (min / median
 * / max over `--runs`, 10 by default). Issue 14's aims: every zip at most 1 MiB, a median import at most 150 ms.
 *
 * Beside each function it imports a reference bundle built with the same settings that holds only what any
 * function must load anyway: the DynamoDB client, the DocumentClient and the SQS client (REFERENCE_SOURCE).
 * The two are imported alternately, so a machine busy with other work slows both alike and the ratio
 * (the median over the runs of each function import / the reference import just before it) stays
 * meaningful where the milliseconds are not; the `cpu` column is the same ratio in CPU time (medians),
 * which load from elsewhere moves least. Issue 23's aim: every payment route and retry worker (marked *)
 * at most 2x the reference.
 *
 * Options: `-- --runs 5`, `-- --only cambioPaymentNotice,sweep`, `-- --json` (one JSON object instead of the table).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { crc32, deflateRawSync } from 'node:zlib';
import { build, type BuildOptions, type Plugin } from 'esbuild';
import { parse, type Tags } from 'yaml';
import { slsFunctions } from '../../shared/aws/stack.js';
import { stackConfig } from '../helpers/stack-config.js';
import { API_ROUTES } from '../../shared/http/routes.js';

const ROOT = resolve(new URL('../..', import.meta.url).pathname);
const MiB = 1024 * 1024;
/** Issue 23: a payment route or retry worker imports in at most this many times the reference. */
const RATIO_AIM = 2;

/** The reference: the AWS SDK clients every payment function needs, constructed so tree shaking keeps them. */
export const REFERENCE_SOURCE = `import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
const dynamo = new DynamoDBClient({ region: 'eu-north-1' });
export const clients = { doc: DynamoDBDocumentClient.from(dynamo), sqs: new SQSClient({ region: 'eu-north-1' }) };
`;

// CloudFormation short forms: serverless.yml uses them outside `custom`; they only need to parse.
const cfnTags: Tags = ['Ref', 'GetAtt', 'Join', 'Sub', 'Select', 'Split', 'If', 'Equals', 'ImportValue'].flatMap((name) => [
  { tag: `!${name}`, resolve: (v: unknown) => ({ [`Fn::${name}`]: v }) } as never,
  { tag: `!${name}`, collection: 'seq', resolve: (v: { toJSON(): unknown }) => ({ [`Fn::${name}`]: v.toJSON() }) } as never,
]);

/** serverless.yml's `custom.esbuild`, as written. */
export function customEsbuild(file = join(ROOT, 'serverless.yml')): Record<string, unknown> {
  const sls = parse(readFileSync(file, 'utf8'), { customTags: cfnTags }) as { custom?: { esbuild?: Record<string, unknown> } };
  if (!sls.custom?.esbuild) throw new Error(`${file} has no custom.esbuild`);
  return sls.custom.esbuild;
}

/**
 * serverless-esbuild's own options, which it removes before calling esbuild (serverless-esbuild 1.57,
 * dist/bundle.js); everything else in custom.esbuild goes to esbuild unchanged.
 */
const PLUGIN_ONLY = ['concurrency', 'zipConcurrency', 'exclude', 'nativeZip', 'packager', 'packagePath', 'watch', 'keepOutputDirectory', 'packagerOptions', 'installExtraArgs', 'outputFileExtension', 'outputBuildFolder', 'outputWorkFolder', 'nodeExternals', 'skipBuild', 'skipRebuild', 'skipBuildExcludeFns', 'stripEntryResolveExtensions', 'disposeContext', 'plugins', 'config'];

/**
 * The esbuild options serverless-esbuild derives from `custom.esbuild`: its defaults (bundle, platform node,
 * `exclude: ['aws-sdk']`), external plus exclude, `.js` renamed to outputFileExtension, and the plugins file
 * called as serverless-esbuild calls it (with the service: here only its directory).
 */
export function esbuildOptions(custom: Record<string, unknown>, serviceDir = ROOT): BuildOptions {
  const merged: Record<string, unknown> = { bundle: true, platform: 'node', external: [], exclude: ['aws-sdk'], outputFileExtension: '.js', ...custom };
  const options = Object.fromEntries(Object.entries(merged).filter(([k]) => !PLUGIN_ONLY.includes(k))) as BuildOptions;
  const exclude = [merged.exclude].flat().filter((e): e is string => typeof e === 'string');
  options.external = [...((merged.external as string[] | undefined) ?? []), ...(exclude.includes('*') ? [] : exclude)];
  if (merged.outputFileExtension !== '.js') options.outExtension = { '.js': String(merged.outputFileExtension) };
  if (typeof merged.plugins === 'string') {
    const loaded = createRequire(join(ROOT, 'package.json'))(join(ROOT, merged.plugins)) as Plugin[] | ((sls: { serviceDir: string }) => Plugin[]);
    options.plugins = typeof loaded === 'function' ? loaded({ serviceDir }) : loaded;
  }
  return options;
}

/** Every deployed function and its handler file, from the same generator serverless.yml uses (the values do not matter here). */
export function deployedFunctions(): { name: string; entry: string }[] {
  const cfg = stackConfig('coldstart');
  return Object.entries(slsFunctions(cfg)).map(([name, fn]) => {
    const handler = String((fn as { handler: string }).handler);
    return { name, entry: `${handler.slice(0, handler.lastIndexOf('.'))}.ts` };
  });
}

/** A zip archive of `files`, deflated at level 1 as serverless-esbuild's archiver does (its zips are the same size within a few bytes). */
export function zip(files: { name: string; data: Buffer }[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const f of files) {
    const name = Buffer.from(f.name, 'utf8');
    const packed = deflateRawSync(f.data, { level: 1 });
    const crc = crc32(f.data);
    const header = Buffer.alloc(30);
    header.writeUInt32LE(0x04034b50, 0);
    header.writeUInt16LE(20, 4);
    header.writeUInt16LE(0x0800, 6);
    header.writeUInt16LE(8, 8);
    header.writeUInt32LE(0x00210000, 10); // 1980-01-01 00:00, as serverless-esbuild dates its entries
    header.writeUInt32LE(crc, 14);
    header.writeUInt32LE(packed.length, 18);
    header.writeUInt32LE(f.data.length, 22);
    header.writeUInt16LE(name.length, 26);
    locals.push(header, name, packed);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x0800, 8);
    central.writeUInt16LE(8, 10);
    central.writeUInt32LE(0x00210000, 12);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(packed.length, 20);
    central.writeUInt32LE(f.data.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, name);
    offset += header.length + name.length + packed.length;
  }
  const directory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(files.length, 8);
  end.writeUInt16LE(files.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, directory, end]);
}

/**
 * Milliseconds a fresh node process spends in `import()` of the handler (Node's own start-up excluded): the
 * wall time, and the CPU time the process used meanwhile (all its threads), which a machine busy with other
 * work inflates far less than the wall time.
 */
function importMs(file: string): { wall: number; cpu: number } {
  const script = `const c = process.cpuUsage(); const t = performance.now(); await import(${JSON.stringify(pathToFileURL(file).href)}); const wall = performance.now() - t; const u = process.cpuUsage(c); process.stdout.write(JSON.stringify({ wall, cpu: (u.user + u.system) / 1000 }));`;
  // A clean environment: nothing of this shell's NODE_OPTIONS or AWS settings changes what the import does.
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { env: { PATH: process.env.PATH ?? '' }, encoding: 'utf8', cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] });
  return JSON.parse(out) as { wall: number; cpu: number };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

/** A payment route (it posts) or a retry worker: the functions issue 23's ratio aim is about. */
export function isPaymentFunction(entry: string): boolean {
  return /^functions\/retry-(?!worker\.)[a-z-]+\.ts$/.test(entry) || API_ROUTES.some((r) => 'posts' in r && r.posts && entry === `functions/${r.file}.ts`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '10' }, only: { type: 'string' }, json: { type: 'boolean', default: false } } });
  const runs = Math.max(1, Number(values.runs));
  const only = values.only?.split(',');
  const work = join(ROOT, '.esbuild', 'coldstart');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const custom = customEsbuild();
  const options = esbuildOptions(custom, join(work, 'service'));
  // The reference, built as a function is (its source sits under the project so node_modules resolve).
  const referenceEntry = join(work, 'reference.ts');
  writeFileSync(referenceEntry, REFERENCE_SOURCE);
  const referenceBuild = await build({ ...options, plugins: [], sourcemap: false, entryPoints: [referenceEntry], outdir: join(work, 'build', 'reference'), metafile: true, logLevel: 'warning', absWorkingDir: ROOT });
  const referenceFile = Object.keys(referenceBuild.metafile.outputs).map((o) => resolve(ROOT, o)).find((o) => !o.endsWith('.map'));
  if (!referenceFile) throw new Error('reference: no bundle was written');
  const referenceAll: number[] = [];
  type Row = { name: string; payment: boolean; zipBytes: number; files: string[]; min: number; median: number; max: number; reference: number; ratio: number; cpuRatio: number };
  const rows: Row[] = [];
  for (const fn of deployedFunctions().filter((f) => !only || only.includes(f.name))) {
    // Each function on its own, like serverless-esbuild: the entry's directory under the build folder.
    const outdir = join(work, 'build', fn.name, fn.entry.slice(0, fn.entry.lastIndexOf('/')));
    const result = await build({ ...options, entryPoints: [join(ROOT, fn.entry)], outdir, metafile: true, logLevel: 'warning', absWorkingDir: ROOT });
    // What is left in the build folder once the plugins ran is what the zip holds (source maps go apart).
    const shipped = Object.keys(result.metafile.outputs).map((o) => resolve(ROOT, o)).filter((o) => existsSync(o));
    const handler = shipped.find((o) => !o.endsWith('.map'));
    if (!handler) throw new Error(`${fn.name}: no bundle was written`);
    const archive = zip(shipped.map((o) => ({ name: relative(join(work, 'build', fn.name), o), data: readFileSync(o) })));
    writeFileSync(join(work, `${fn.name}.zip`), archive);
    const own: { wall: number; cpu: number }[] = [];
    const ref: { wall: number; cpu: number }[] = [];
    for (let i = 0; i < runs; i++) {
      ref.push(importMs(referenceFile));
      own.push(importMs(handler));
    }
    const times = own.map((t) => t.wall);
    referenceAll.push(...ref.map((t) => t.wall));
    // Each import over the reference import just before it: a burst of load from elsewhere moves both.
    const ratio = median(own.map((t, i) => t.wall / (ref[i] as { wall: number }).wall));
    const cpuRatio = median(own.map((t) => t.cpu)) / median(ref.map((t) => t.cpu));
    rows.push({ name: fn.name, payment: isPaymentFunction(fn.entry), zipBytes: archive.length, files: shipped.map((o) => relative(join(work, 'build', fn.name), o)), min: Math.min(...times), median: median(times), max: Math.max(...times), reference: median(ref.map((t) => t.wall)), ratio, cpuRatio });
  }
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ esbuild: custom, runs, reference: { median: median(referenceAll), file: relative(ROOT, referenceFile) }, functions: rows }, null, 2)}\n`);
    return;
  }
  const kib = (n: number) => `${(n / 1024).toFixed(0)} KiB`;
  const ms = (n: number) => n.toFixed(0);
  process.stdout.write(`esbuild settings from serverless.yml custom.esbuild: minify ${String(custom.minify)}, sourcemap ${String(custom.sourcemap)}; import time over ${runs} fresh node processes\n`);
  process.stdout.write(`reference (DynamoDB client + DocumentClient + SQS client, same settings): median ${ms(median(referenceAll))} ms over ${referenceAll.length} imports, alternated with the functions'\n\n`);
  process.stdout.write(`${'function'.padEnd(22)} ${'zip'.padStart(9)}  ${'import ms: min'.padStart(14)} ${'median'.padStart(6)} ${'max'.padStart(5)} ${'ref'.padStart(5)} ${'ratio'.padStart(6)} ${'cpu'.padStart(5)}  shipped\n`);
  for (const r of rows) {
    process.stdout.write(`${r.name.padEnd(22)} ${kib(r.zipBytes).padStart(9)}  ${ms(r.min).padStart(14)} ${ms(r.median).padStart(6)} ${ms(r.max).padStart(5)} ${ms(r.reference).padStart(5)} ${`${r.ratio.toFixed(2)}${r.payment ? '*' : ' '}`.padStart(6)} ${r.cpuRatio.toFixed(2).padStart(5)}  ${r.files.join(', ')}\n`);
  }
  const worstZip = Math.max(...rows.map((r) => r.zipBytes));
  const worstMedian = Math.max(...rows.map((r) => r.median));
  const payment = rows.filter((r) => r.payment);
  const worstRatio = Math.max(0, ...payment.map((r) => r.ratio));
  const worstCpu = Math.max(0, ...payment.map((r) => r.cpuRatio));
  process.stdout.write(`\nlargest zip ${kib(worstZip)} (aim ≤ 1024 KiB: ${worstZip <= MiB ? 'met' : 'NOT met'}); slowest median import ${ms(worstMedian)} ms (aim ≤ 150 ms: ${worstMedian <= 150 ? 'met' : 'NOT met'})\n`);
  if (payment.length > 0) process.stdout.write(`highest ratio of a payment route or retry worker (*) ${worstRatio.toFixed(2)}x the reference (aim ≤ ${RATIO_AIM}x: ${worstRatio <= RATIO_AIM ? 'met' : 'NOT met'}); in CPU time ${worstCpu.toFixed(2)}x\n`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err: unknown) => {
    process.stderr.write(`coldstart: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  });
}
