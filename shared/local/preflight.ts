import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { relative } from 'node:path';
import { ClassicLevel } from 'classic-level';

/**
 * Checks made before `npm start` touches anything (issue 15): a second `npm start` in the same folder
 * died with dynalite's "Database is closed" stack trace, because LevelDB's lock on the data folder was
 * held by the first, and the port was taken too. Each conflict is found here and told in words.
 */

/** Whether something already listens on 127.0.0.1:`port` (the address the local gateway binds). */
export async function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') resolve(true);
      else reject(err);
    });
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(false)));
  });
}

/**
 * Whether another process holds LevelDB's lock on `dir` (dynalite keeps its records there). Opening the
 * folder takes the same lock dynalite would; it is released again at once. A folder that does not exist
 * yet is nobody's.
 */
export async function dataDirHeld(dir: string): Promise<boolean> {
  if (!existsSync(dir)) return false;
  const db = new ClassicLevel(dir, { createIfMissing: false });
  try {
    await db.open();
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause;
    if (cause?.code === 'LEVEL_LOCKED') return true;
    // Not ours to judge here (an empty or damaged folder): dynalite decides, as before.
    return false;
  }
  await db.close();
  return false;
}

/** The first free port after `from` (at most 20 tried), to suggest one that works now. */
export async function nextFreePort(from: number): Promise<number | undefined> {
  for (let port = from + 1; port <= Math.min(65_535, from + 20); port++) if (!(await portInUse(port))) return port;
  return undefined;
}

/** What `npm start` writes to its local file (shared/cli/context.ts, LocalFile): read here to name the other stack. */
interface OtherStack {
  apiUrl?: string;
  pid?: number;
}

/** Whether process `pid` is alive (signal 0 checks without sending anything). */
export function alive(pid: number | undefined): boolean {
  if (!pid || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, it is someone else's.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function readOther(localFile: string): OtherStack | undefined {
  try {
    const other = JSON.parse(readFileSync(localFile, 'utf8')) as OtherStack;
    return alive(other.pid) ? other : undefined;
  } catch {
    return undefined;
  }
}

export interface PreflightInput {
  port: number;
  /** Absolute path of the data folder. */
  dataDir: string;
  /** Where a running stack of this folder says where it is (`.data/local.json`). */
  localFile: string;
  /** For the suggestion: paths are shown relative to this (the working directory). */
  cwd: string;
}

/**
 * The reasons this stack cannot start, as a message for the person who ran `npm start`, or undefined
 * when the port and the data folder are free.
 */
export async function preflight(input: PreflightInput): Promise<string | undefined> {
  const [portTaken, dataTaken] = await Promise.all([portInUse(input.port), dataDirHeld(input.dataDir)]);
  if (!portTaken && !dataTaken) return undefined;
  const shown = (path: string) => {
    const rel = relative(input.cwd, path);
    return rel && !rel.startsWith('..') ? rel : path;
  };
  const other = readOther(input.localFile);
  const otherText = other ? ` (another paybridge: ${other.apiUrl ?? '?'}, process ${other.pid}; see ${shown(input.localFile)})` : '';
  const lines = ['paybridge cannot start:'];
  if (portTaken) lines.push(`  - port ${input.port} on 127.0.0.1 is in use${otherText}`);
  if (dataTaken) lines.push(`  - the data folder ${shown(input.dataDir)} is held by another process (dynalite's LevelDB lock)${portTaken ? '' : otherText}`);
  const freePort = portTaken ? await nextFreePort(input.port) : input.port;
  const env = [
    ...(portTaken ? [`PORT=${freePort ?? '<a free port>'}`] : []),
    ...(dataTaken ? [`PAYBRIDGE_DATA_DIR=${shown(input.dataDir)}-${freePort ?? 2}`] : []),
  ];
  lines.push(
    '',
    other
      ? `Most likely another npm start in this folder. Stop it (Ctrl-C in its terminal, or kill ${other.pid}), or run this one beside it:`
      : 'Stop whatever holds it, or run this one beside it:',
    `  ${env.join(' ')} npm start`,
  );
  if (dataTaken) lines.push('(a data folder of its own starts with no records: the other stack keeps its own)');
  return lines.join('\n');
}
