import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { SYSTEMS } from '../../shared/aws/stack.js';
import { API_ROUTES } from '../../shared/http/routes.js';
import { customEsbuild, esbuildOptions } from '../bench/coldstart.js';

// Minifying and source maps change no input, only time: left out here.
const settings = { ...esbuildOptions(customEsbuild()), minify: false, sourcemap: false, plugins: [] };

/** The files esbuild puts in a handler's bundle, built with serverless.yml's settings as serverless-esbuild would. */
async function inputs(entry: string): Promise<string[]> {
  return (await inputsOfEach([entry])).get(entry) ?? [];
}

/**
 * The same for several handlers in one esbuild run (each still its own bundle, no shared chunks): esbuild
 * parses a module the entries share once, which keeps `npm test` within its 4 minutes.
 */
async function inputsOfEach(entries: string[]): Promise<Map<string, string[]>> {
  const out = await build({ ...settings, entryPoints: entries, write: false, metafile: true, logLevel: 'silent', outdir: 'unused' });
  const found = new Map<string, string[]>();
  for (const o of Object.values(out.metafile.outputs)) if (o.entryPoint) found.set(o.entryPoint, Object.keys(o.inputs));
  return found;
}

const packageOf = (file: string) => file.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/)?.[1];

describe('handler bundles', () => {
  it('the authorizer bundles its decision, the logger and the SSM client, nothing of the application', async () => {
    const files = await inputs('functions/authorize.ts');
    // observe.ts: the one middleware that lets the IAM test see its SSM calls (issue 20, item 2).
    expect(files.filter((f) => !f.includes('node_modules')).sort()).toEqual(['functions/authorize.ts', 'shared/aws/observe.ts', 'shared/http/authorizer.ts', 'shared/log.ts']);
    const packages = new Set(files.map(packageOf).filter(Boolean));
    expect(packages.has('@aws-sdk/client-ssm')).toBe(true);
    for (const unwanted of ['@middy/core', 'zod', 'undici', 'standardwebhooks', '@aws-sdk/client-dynamodb', '@aws-sdk/client-sqs']) expect(packages.has(unwanted), unwanted).toBe(false);
  });

  it('the OpenAPI handler reads the route table, not the other handlers (no import circle through shared/local/routes.ts)', async () => {
    const files = await inputs('functions/openapi.ts');
    expect(files).toContain('shared/http/routes.ts');
    expect(files.filter((f) => f.startsWith('functions/'))).toEqual(['functions/openapi.ts']);
    expect(files.some((f) => f.startsWith('shared/local/'))).toBe(false);
  }, 30_000);

  /** A system's folder under shared/systems (the three NIF systems share one). */
  const folderOf = (system: string) => (system.startsWith('nif') ? 'nif' : system);
  /** What every system-specific bundle may share: the module types, the HTTP helpers, the zod messages. */
  // holdings.ts: what each system's checkpoints say the downstream holds, pure and client-free (the transition function reads it).
  const SHARED_SYSTEM_FILES = ['shared/systems/types.ts', 'shared/systems/http.ts', 'shared/systems/messages.ts', 'shared/systems/holdings.ts'];

  it('a payment route and a retry worker carry their own system only (issue 14)', async () => {
    const entries = [
      ...API_ROUTES.flatMap((r) => ('posts' in r ? [[`functions/${r.file}.ts`, r.posts] as const] : [])),
      ...SYSTEMS.map((s) => [`functions/retry-${s}.ts`, s] as const),
    ];
    const built = await inputsOfEach(entries.map(([entry]) => entry));
    expect([...built.keys()].sort()).toEqual(entries.map(([entry]) => entry).sort());
    await Promise.all(
      entries.map(async ([entry, system]) => {
        const files = built.get(entry) as string[];
        const foreign = files.filter((f) => f.startsWith('shared/systems/') && !SHARED_SYSTEM_FILES.includes(f) && !f.startsWith(`shared/systems/${folderOf(system)}/`));
        expect(foreign, entry).toEqual([]);
        expect(files.some((f) => f.startsWith(`shared/systems/${folderOf(system)}/client.ts`)), entry).toBe(true);
        expect(files.some((f) => f.includes('node_modules/@aws-sdk/client-sqs/')), entry).toBe(true);
      }),
    );
  }, 60_000);

  it('a payment function, and events out\'s two, bundle undici\'s Agent and request API, not fetch, WebSocket, the cache, mocks or proxies (issue 23)', async () => {
    // eventDelivery and eventEndpoints took undici's package entry (444 KiB of it) and imported at 2.2x to 2.3x the reference.
    const entries = ['functions/cambio-payment-notice.ts', 'functions/event-delivery.ts', 'functions/event-endpoints.ts'];
    const each = await inputsOfEach(entries);
    for (const entry of entries) {
      const undici = (each.get(entry) ?? []).filter((f) => f.includes('node_modules/undici/'));
      expect(undici, entry).toContain('node_modules/undici/lib/dispatcher/agent.js');
      expect(undici, entry).toContain('node_modules/undici/lib/api/api-request.js');
      expect(undici, entry).not.toContain('node_modules/undici/index.js');
      const unwanted = undici.filter((f) => /\/lib\/(web\/(fetch\/index|websocket|cache|eventsource)|cache\/|mock\/|interceptor\/|dispatcher\/(proxy-agent|socks5|env-http-proxy|retry-agent|balanced-pool|h2c))/.test(f));
      expect(unwanted, entry).toEqual([]);
    }
  }, 60_000);

  it('a built payment function leaves out undici\'s HTTP/2 client, fetch bodies and non-SIMD parser, loads no node:http2, and its bundled HTTP client still posts (issue 23)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'paybridge-h2-'));
    try {
      // With serverless.yml's plugins, as deployed (source maps go to the service folder here).
      const options = esbuildOptions(customEsbuild(), join(dir, 'service'));
      const built = await build({ ...options, entryPoints: ['functions/cambio-payment-notice.ts'], outdir: join(dir, 'fn'), logLevel: 'silent', metafile: true });
      // The parts of undici the clients cannot reach stay out (shared/aws/esbuild-plugins.cjs); the SIMD parser stays in.
      const undici = Object.keys(built.metafile.inputs).filter((f) => f.includes('node_modules/undici/'));
      expect(undici.filter((f) => /lib\/(dispatcher\/client-h2|web\/|llhttp\/llhttp-wasm)/.test(f))).toEqual([]);
      expect(undici).toContain('node_modules/undici/lib/llhttp/llhttp_simd-wasm.js');
      const entry = join(dir, 'http-entry.ts');
      writeFileSync(entry, `export { makeDispatcher, observe } from ${JSON.stringify(resolve('shared/systems/http.ts'))};\n`);
      await build({ ...options, entryPoints: [entry], outdir: join(dir, 'http'), logLevel: 'silent' });
      const fn = pathToFileURL(join(dir, 'fn', 'cambio-payment-notice.mjs')).href;
      const http = pathToFileURL(join(dir, 'http', 'http-entry.mjs')).href;
      const script = `
        const before = new Set(process.moduleLoadList);
        await import(${JSON.stringify(fn)});
        const loaded = process.moduleLoadList.filter((m) => !before.has(m) && m.startsWith('NativeModule '));
        const { createServer } = await import('node:http');
        const server = createServer((req, res) => { req.resume(); req.on('end', () => { res.writeHead(201, { 'content-type': 'application/json' }); res.end('{"ok":true}'); }); });
        await new Promise((r) => server.listen(0, '127.0.0.1', r));
        const { makeDispatcher, observe } = await import(${JSON.stringify(http)});
        const dispatcher = makeDispatcher();
        const obs = await observe(dispatcher, { method: 'POST', url: 'http://127.0.0.1:' + server.address().port + '/x', headers: {}, body: '{}', signal: AbortSignal.timeout(5000) });
        await dispatcher.close();
        server.close();
        process.stdout.write(JSON.stringify({ http2: loaded.includes('NativeModule http2'), status: obs.status, body: obs.body }));`;
      const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'ignore'] })) as { http2: boolean; status: number; body: unknown };
      expect(out).toEqual({ http2: false, status: 201, body: { ok: true } });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('the status routes and the sweep know the systems by description: no client, no undici; reads send no message', async () => {
    const read = { 'functions/get-payment.ts': true, 'functions/kontantanalys-get.ts': true, 'functions/openapi.ts': true, 'functions/sweep.ts': false, 'functions/kontantanalys-sync.ts': false };
    await Promise.all(
      Object.entries(read).map(async ([entry, isRead]) => {
        const files = await inputs(entry);
        expect(files.filter((f) => /shared\/systems\/[^/]+\/(client|index|simulator)\.ts$/.test(f) || f.includes('node_modules/undici/')), entry).toEqual([]);
        expect(files.some((f) => f.includes('node_modules/@aws-sdk/client-sqs/')), entry).toBe(!isRead);
      }),
    );
    // The OpenAPI route's role grants no table: it carries no DynamoDB client either.
    expect((await inputs('functions/openapi.ts')).some((f) => f.includes('node_modules/@aws-sdk/client-dynamodb/'))).toBe(false);
  }, 60_000);
});
