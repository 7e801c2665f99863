// How `paybridge` starts fast (issue 15). Running the TypeScript through tsx costs every call about
// 150 ms before any work: tsx's loader thread is registered and every module of the import graph
// passes through it. Instead the CLI is bundled once with esbuild (which tsx already depends on) into
// node_modules/.cache/paybridge-cli, one chunk per command, and later calls import the bundle
// directly. The bundle is used only while every source file it was built from has the same content:
// a manifest keeps their SHA-256, checked on each call (a few milliseconds), so an edit or a
// `git pull` is picked up by the next call, never run stale. Anything unusual (no esbuild, a
// read-only node_modules, a failed build, PAYBRIDGE_CLI_BUNDLE=off) falls back to tsx.
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const ENTRY = 'shared/cli/run.ts';
/** Besides the sources: what changes how they compile (package-lock.json: the AWS SDK bundled in, below). */
const ALSO = ['tsconfig.json', 'package.json', 'package-lock.json', 'shared/cli/launch.mjs'];
/** Packages bundled into the CLI, tree-shaken; every other package is loaded from node_modules as it is. */
const BUNDLED = /^(@aws-sdk|@smithy|@aws-crypto)\/|^tslib$/;

/**
 * The AWS SDK inside the bundle, tree-shaken from its ESM build, as the Lambda bundles have it
 * (serverless.yml custom.esbuild): loaded from node_modules, `@aws-sdk/client-dynamodb`'s CommonJS build
 * defines every DynamoDB command and model at import, about 300 ms of `payments list` on this 2-core machine
 * (11 interleaved runs each against one local stack: median 877 ms before, 552 ms after, at load 8.5). Our own bare
 * imports of any other package stay external (dynalite, fauxqs, tsx: native modules, or loaded only by
 * `simulate`); whatever a bundled SDK package imports is bundled with it.
 */
function sdkBundled() {
  return {
    name: 'paybridge-cli-sdk-bundled',
    setup(build) {
      build.onResolve({ filter: /^[^./]/ }, (args) => {
        if (args.path.startsWith('node:') || BUNDLED.test(args.path) || /[\\/]node_modules[\\/]/.test(args.importer)) return undefined;
        return { path: args.path, external: true };
      });
    },
  };
}
/** Earlier bundles are removed only this long after they were replaced: a call still running may load their chunks. */
const KEEP_OLD_MS = 60 * 60_000;

function digest(root, file) {
  return createHash('sha256').update(readFileSync(join(root, file))).digest('base64url');
}

/** The bundle's run.mjs if it was built from exactly the files there are now, else undefined. */
export function freshBundle(cacheDir, root = ROOT) {
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(join(cacheDir, 'current.json'), 'utf8'));
    for (const [file, sum] of Object.entries(manifest.files)) if (digest(root, file) !== sum) return undefined;
  } catch {
    return undefined;
  }
  return join(cacheDir, manifest.dir, 'run.mjs');
}

/** Builds the bundle in a directory of its own and then points current.json at it (a rename: atomic). */
export async function buildBundle(cacheDir, root = ROOT) {
  const { build } = await import('esbuild');
  const startedAt = Date.now();
  const dir = `b-${startedAt}-${randomBytes(4).toString('hex')}`;
  mkdirSync(join(cacheDir, dir), { recursive: true });
  const result = await build({
    absWorkingDir: root,
    entryPoints: [ENTRY],
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    // Our own TypeScript and the AWS SDK (sdkBundled); other packages stay where npm put them (zod, undici, ...).
    plugins: [sdkBundled()],
    // The SDK's ESM builds, which tree-shake (platform node would pick their CommonJS `main`).
    mainFields: ['module', 'main'],
    // CommonJS code inside the SDK's ESM bundle needs a require.
    banner: { js: "import { createRequire as __pbCliRequire } from 'node:module'; const require = __pbCliRequire(import.meta.url);" },
    outdir: join(cacheDir, dir),
    outExtension: { '.js': '.mjs' },
    metafile: true,
    logLevel: 'silent',
  });
  const files = {};
  // The bundled packages' files are not hashed on each call (hundreds of them): package-lock.json stands for them.
  for (const file of [...Object.keys(result.metafile.inputs).filter((f) => !f.includes('node_modules/')), ...ALSO]) files[file] = digest(root, file);
  // A file saved while esbuild ran may be in the bundle as it was before: use the bundle for this call
  // only, and let the next call build again rather than record contents the bundle may not have.
  const racing = Object.keys(files).some((file) => statSync(join(root, file)).mtimeMs >= startedAt);
  if (racing) return join(cacheDir, dir, 'run.mjs');
  const tmp = join(cacheDir, `current.${process.pid}.${randomBytes(4).toString('hex')}.json`);
  writeFileSync(tmp, JSON.stringify({ dir, files }));
  renameSync(tmp, join(cacheDir, 'current.json'));
  for (const old of readdirSync(cacheDir)) {
    if (!old.startsWith('b-') || old === dir) continue;
    const at = join(cacheDir, old);
    if (Date.now() - statSync(at).mtimeMs > KEEP_OLD_MS) rmSync(at, { recursive: true, force: true });
  }
  return join(cacheDir, dir, 'run.mjs');
}

/**
 * The CLI's `main`, from the bundle when it can be used, else through tsx. A `cacheDir` must lie inside
 * the project (its node_modules), where the packages the bundle imports resolve.
 */
export async function loadMain({
  cacheDir = process.env.PAYBRIDGE_CLI_CACHE ?? join(ROOT, 'node_modules/.cache/paybridge-cli'),
  bundle = process.env.PAYBRIDGE_CLI_BUNDLE !== 'off',
} = {}) {
  if (bundle) {
    try {
      const built = freshBundle(cacheDir) ?? (await buildBundle(cacheDir));
      return (await import(pathToFileURL(built).href)).main;
    } catch {
      // Falls through to tsx: slower, never wrong.
    }
  }
  const { register } = await import('tsx/esm/api');
  register();
  return (await import(pathToFileURL(join(ROOT, ENTRY)).href)).main;
}
