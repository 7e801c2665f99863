import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/**
 * The text of each console file by its public name, as `client/files.json` lists them: `./name` from
 * shared/console/client/, anything else a file of an npm package (the chart library, uPlot). Read from disk
 * here, under npm start and in tests. A Lambda bundle has no such files beside it: the esbuild plugin
 * `consoleAssetsInlined` (shared/aws/esbuild-plugins.cjs) replaces this module in the console's bundle with
 * one holding the same files' text, read from the same list at build time, so nothing is fetched at run time.
 */

let files: Record<string, string> | undefined;

export function assetText(name: string): string | undefined {
  const client = (file: string) => fileURLToPath(new URL(`./client/${file}`, import.meta.url));
  files ??= JSON.parse(readFileSync(client('files.json'), 'utf8')) as Record<string, string>;
  if (!Object.hasOwn(files, name)) return undefined;
  const source = files[name] as string;
  return readFileSync(source.startsWith('./') ? client(source.slice(2)) : createRequire(import.meta.url).resolve(source), 'utf8');
}
