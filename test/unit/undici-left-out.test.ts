import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const plugins = require('../../shared/aws/esbuild-plugins.cjs') as { undiciUnusedPartsOut: () => import('esbuild').Plugin };

/**
 * A bundled client whose request meets one of undici's left-out parts (shared/aws/esbuild-plugins.cjs):
 * the stub throws before anything is written, so the observation must say "not sent" (retryable), never
 * "may have been received" (ambiguous, parked unknown). UNDICI_NO_WASM_SIMD=1 is undici's own switch for
 * the non-SIMD llhttp branch, the one a runtime without WebAssembly SIMD takes.
 */
describe('undici parts left out of the bundles', () => {
  it('a request stopped by the left-out non-SIMD llhttp is observed as not sent, and the downstream saw nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'undici-left-out-'));
    try {
      const entry = join(dir, 'entry.ts');
      writeFileSync(
        entry,
        `import { observe, makeDispatcher } from ${JSON.stringify(resolve('shared/systems/http.ts'))};
import { createServer } from 'node:http';
let hits = 0;
const srv = createServer((req, res) => { hits++; req.resume(); req.on('end', () => res.end('{}')); });
srv.listen(0, '127.0.0.1', async () => {
  const port = (srv.address() as { port: number }).port;
  const d = makeDispatcher();
  const obs = [];
  for (let i = 0; i < 2; i++) obs.push(await observe(d, { method: 'POST', url: 'http://127.0.0.1:' + port + '/x', headers: {}, body: '{}' }));
  process.stdout.write(JSON.stringify({ obs, hits }));
  srv.close();
  await d.close();
});
`,
      );
      const out = join(dir, 'out.cjs');
      await build({ entryPoints: [entry], bundle: true, platform: 'node', target: 'node22', format: 'cjs', outfile: out, plugins: [plugins.undiciUnusedPartsOut()], logLevel: 'silent', absWorkingDir: resolve('.') });
      const got = JSON.parse(execFileSync(process.execPath, [out], { env: { ...process.env, UNDICI_NO_WASM_SIMD: '1' }, encoding: 'utf8', timeout: 20_000 })) as { obs: { kind: string; sent?: boolean; message?: string }[]; hits: number };
      expect(got.hits).toBe(0);
      for (const o of got.obs) {
        expect(o.kind).toBe('error');
        expect(o.message).toMatch(/not bundled/);
        expect(o.sent).toBe(false);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
