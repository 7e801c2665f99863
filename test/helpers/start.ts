import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's root: `npm start` and `npx paybridge` run from here. */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A port free right now on 127.0.0.1 (the kernel's pick; a race with another process is unlikely and fails loudly). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Waits (bounded) until an `npm start` at `base` answers; `where` says where its output is when it does not. */
export async function untilAnswering(base: string, limitMs: number, where = ''): Promise<void> {
  const until = Date.now() + limitMs;
  while (Date.now() < until) {
    try {
      await fetch(`${base}/v1/openapi.json`, { signal: AbortSignal.timeout(1_000) });
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`npm start did not answer within ${limitMs} ms${where}`);
}

/** A temporary folder for one test file's data, local file and log-hash key. */
export function tempDir(prefix = 'paybridge-start-'): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface Started {
  proc: ChildProcess;
  /** Everything written so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves when stdout matches, rejects when the process exits first or `timeoutMs` passes. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** The exit code, once the process has ended (at most `timeoutMs`). */
  exited(timeoutMs?: number): Promise<number | null>;
  /** Ctrl-C, as a person would; SIGKILL if it has not ended after `timeoutMs`. */
  stop(timeoutMs?: number): Promise<number | null>;
}

/**
 * `npm start` as a child process: the same entry (shared/local/start.ts through tsx), its own
 * environment (give it PORT, PAYBRIDGE_DATA_DIR and PAYBRIDGE_LOCAL_FILE in a temporary folder).
 * Node runs tsx as a loader in the one process, so a signal reaches the stack itself.
 */
export function startLocal(env: Record<string, string>): Started {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'shared/local/start.ts'], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout?.on('data', (d: Buffer) => {
    out += d.toString('utf8');
  });
  proc.stderr?.on('data', (d: Buffer) => {
    err += d.toString('utf8');
  });
  const ended = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const within = <T>(p: Promise<T>, ms: number, what: string) =>
    Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} within ${ms} ms; stdout: ${out.slice(-2000)}\nstderr: ${err.slice(-2000)}`)), ms).unref())]);
  return {
    proc,
    stdout: () => out,
    stderr: () => err,
    async waitFor(pattern, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const m = out.match(pattern);
        if (m) return m;
        if (proc.exitCode !== null) throw new Error(`exited with ${proc.exitCode} before ${pattern}; stdout: ${out.slice(-2000)}\nstderr: ${err.slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`no ${pattern} within ${timeoutMs} ms; stdout: ${out.slice(-2000)}\nstderr: ${err.slice(-2000)}`);
    },
    exited: (timeoutMs = 30_000) => within(ended, timeoutMs, 'the process did not exit'),
    async stop(timeoutMs = 15_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill('SIGINT');
      try {
        return await within(ended, timeoutMs, 'the stack did not stop');
      } catch (e) {
        proc.kill('SIGKILL');
        await ended;
        throw e;
      }
    },
  };
}
