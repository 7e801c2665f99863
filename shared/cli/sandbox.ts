import type { Run } from './args.js';
import { readLocalFile, localFilePath } from './context.js';
import { table } from './format.js';
import { UsageError } from './io.js';

/** The sandboxes `npm start` runs, by name; the NIF systems share one (both generations). */
const SANDBOXES = ['cambio', 'nif', 'brp', 'kontantanalys'] as const;
const ALIASES: Record<string, (typeof SANDBOXES)[number]> = { 'nif-membership': 'nif', 'nif-corporate': 'nif' };

/** Mirrors shared/systems/sandbox.ts FAULTS (not imported: the command stays light; the sandbox refuses an unknown one anyway). */
const FAULTS = ['none', '429', '500', '502', '503', '504', '401', '403', 'reset-before', 'reset-after', 'hang-after'];

/** A sandbox's base without its trailing slash: `<base>/__sandbox/...` reaches its control routes. */
function base(url: string): string {
  return url.replace(/\/+$/, '');
}

/**
 * `paybridge sandbox [SYSTEM] [--fault F ...]`: where the local stack's sandboxes are, and one-shot faults
 * queued on one of them (issue 15: the recipes that produce a held, unknown or failed payment need to
 * address a sandbox whose port changes with every start). Without SYSTEM: every sandbox. With SYSTEM and no
 * fault: its URL alone, for `$(npx paybridge sandbox nif)/__sandbox/...`.
 */
export async function sandboxCommand(run: Run): Promise<number> {
  const { values, io } = run;
  const [asked, ...extra] = run.args;
  if (extra.length > 0) throw new UsageError('usage: paybridge sandbox [SYSTEM] [--fault 403 --fault 403]');
  if (values.stage) throw new UsageError('sandbox is for the local stack (npm start): a deployed stage talks to the real systems');
  const file = readLocalFile();
  if (!file) throw new Error(`no local stack found (${localFilePath()} is missing): start one with npm start`);
  const urls: Record<string, string | undefined> = file.sandboxes;
  const faults = values.fault ?? [];

  if (!asked) {
    if (faults.length > 0) throw new UsageError('--fault needs a SYSTEM: paybridge sandbox cambio --fault 403');
    const rows = SANDBOXES.map((s) => [s, urls[s] ? base(urls[s]) : '(not a sandbox: its *_BASE_URL is set)']);
    if (values.json) io.out(JSON.stringify(Object.fromEntries(SANDBOXES.map((s) => [s, urls[s] ? base(urls[s]) : null])), null, 2));
    else {
      for (const line of table([['SANDBOX', 'URL'], ...rows])) io.out(line);
      io.out('faults: paybridge sandbox SYSTEM --fault F [--fault F] (the next calls answer so, in order): ' + FAULTS.join(', '));
    }
    return 0;
  }
  const name = ALIASES[asked] ?? asked;
  if (!(SANDBOXES as readonly string[]).includes(name)) throw new UsageError(`unknown sandbox "${asked}"; known: ${SANDBOXES.join(', ')} (nif serves nif-membership and nif-corporate too)`);
  const url = urls[name];
  if (!url) {
    io.err(`${name} is not a sandbox on this stack: its base URL was set when npm start ran`);
    return 1;
  }
  if (faults.length === 0) {
    io.out(values.json ? JSON.stringify({ sandbox: name, url: base(url) }) : base(url));
    return 0;
  }
  const unknown = faults.filter((f) => !FAULTS.includes(f));
  if (unknown.length > 0) throw new UsageError(`unknown fault ${unknown.join(', ')}; known: ${FAULTS.join(', ')}`);
  const res = await fetch(`${base(url)}/__sandbox/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ faults }),
    signal: AbortSignal.timeout(10_000),
  });
  if (res.status !== 204) {
    io.err(`the ${name} sandbox answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
    return 1;
  }
  if (values.json) io.out(JSON.stringify({ sandbox: name, url: base(url), queued: faults }));
  else io.out(`${name} sandbox (${base(url)}): the next ${faults.length === 1 ? 'call answers' : `${faults.length} calls answer`} ${faults.join(', then ')}`);
  return 0;
}
