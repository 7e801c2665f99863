import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { customEsbuild, esbuildOptions, zip } from '../bench/coldstart.js';

/** serverless.yml's esbuild settings, as serverless-esbuild (and `npm run coldstart`) pass them to esbuild. */
describe('the bundles serverless package builds (issue 14)', () => {
  const custom = customEsbuild();
  const dir = mkdtempSync(join(tmpdir(), 'paybridge-esbuild-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('are minified, tree-shaken, ESM, from the dependencies’ ESM builds', () => {
    expect(custom).toMatchObject({ bundle: true, minify: true, treeShaking: true, format: 'esm', platform: 'node', outputFileExtension: '.mjs' });
    expect(custom.mainFields).toEqual(['module', 'main']);
  });

  it('build a source map but ship only the bundle: the map goes apart and the bundle does not name it', async () => {
    // `linked`, `inline`, `both` or `true` would ship it, or point the runtime at a file that is not there.
    expect(custom.sourcemap).toBe('external');
    const outdir = join(dir, 'build', 'functions');
    const service = join(dir, 'service');
    await build({ ...esbuildOptions(custom, service), entryPoints: ['functions/openapi.ts'], outdir, logLevel: 'silent' });
    expect(readdirSync(outdir)).toEqual(['openapi.mjs']);
    expect(existsSync(join(service, '.serverless', 'sourcemaps', 'openapi.mjs.map'))).toBe(true);
    const code = readFileSync(join(outdir, 'openapi.mjs'), 'utf8');
    expect(code).not.toContain('sourceMappingURL');
    // Minified: the generator's own local names are gone.
    expect(code).not.toContain('PAYMENT_RESPONSES');
  }, 30_000);

  it('zips as serverless-esbuild does: a readable archive of exactly the given files', () => {
    const data = Buffer.from('export const handler = () => 1;\n'.repeat(50));
    const archive = zip([{ name: 'functions/x.mjs', data }]);
    // Local header signature, the name, and the end-of-directory record naming one entry.
    expect(archive.readUInt32LE(0)).toBe(0x04034b50);
    expect(archive.subarray(30, 30 + 'functions/x.mjs'.length).toString()).toBe('functions/x.mjs');
    expect(archive.readUInt16LE(archive.length - 22 + 10)).toBe(1);
    expect(archive.length).toBeLessThan(data.length);
  });
});
