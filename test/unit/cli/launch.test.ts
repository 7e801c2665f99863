import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { buildBundle, freshBundle } from '../../../shared/cli/launch.mjs';

describe('the bundle the paybridge command starts from', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  /** A project of two TypeScript files in the layout launch.mjs expects. */
  function project(answer: number): string {
    const root = mkdtempSync(join(tmpdir(), 'pb-launch-'));
    dirs.push(root);
    mkdirSync(join(root, 'shared/cli'), { recursive: true });
    writeFileSync(join(root, 'tsconfig.json'), '{}');
    writeFileSync(join(root, 'package.json'), '{"type":"module"}');
    writeFileSync(join(root, 'package-lock.json'), '{}');
    writeFileSync(join(root, 'shared/cli/launch.mjs'), '');
    writeFileSync(join(root, 'shared/cli/answer.ts'), `export const answer: number = ${answer};`);
    writeFileSync(join(root, 'shared/cli/run.ts'), `export async function main(_: string[]): Promise<number> { return (await import('./answer.js')).answer; }`);
    return root;
  }

  async function mainOf(file: string): Promise<(argv: string[]) => Promise<number>> {
    return (await import(`${pathToFileURL(file).href}?${Math.random()}`)).main;
  }

  it('is used while every source has the content it was built from, and rebuilt after any change', async () => {
    const root = project(1);
    const cache = join(root, 'cache');
    expect(freshBundle(cache, root)).toBeUndefined();
    const first = await buildBundle(cache, root);
    expect(freshBundle(cache, root)).toBe(first);
    expect(await (await mainOf(first))([])).toBe(1);

    // A file only the lazily loaded chunk holds: the bundle is stale as soon as it changes.
    writeFileSync(join(root, 'shared/cli/answer.ts'), 'export const answer: number = 2;');
    expect(freshBundle(cache, root)).toBeUndefined();
    const second = await buildBundle(cache, root);
    expect(second).not.toBe(first);
    expect(freshBundle(cache, root)).toBe(second);
    expect(await (await mainOf(second))([])).toBe(2);
    // The earlier bundle stays for calls that may still load its chunks.
    expect(readdirSync(cache).filter((d) => d.startsWith('b-'))).toHaveLength(2);

    // A source saved while the bundle is built: that bundle serves its own call but is not recorded.
    const racing = join(root, 'shared/cli/answer.ts');
    writeFileSync(racing, 'export const answer: number = 3;');
    utimesSync(racing, new Date(Date.now() + 60_000), new Date(Date.now() + 60_000));
    const third = await buildBundle(cache, root);
    expect(await (await mainOf(third))([])).toBe(3);
    expect(freshBundle(cache, root)).toBeUndefined();

    utimesSync(racing, new Date(), new Date(Date.now() - 60_000));
    const fourth = await buildBundle(cache, root);
    expect(freshBundle(cache, root)).toBe(fourth);
    // What changes how the sources compile counts too.
    writeFileSync(join(root, 'tsconfig.json'), '{"compilerOptions":{}}');
    expect(freshBundle(cache, root)).toBeUndefined();
    rmSync(join(root, 'tsconfig.json'));
    expect(freshBundle(cache, root)).toBeUndefined();
  });
});
