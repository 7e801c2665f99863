import { silenceSdkNodeVersionWarning } from '../quiet.js';
import type { Io } from './io.js';
import { runCli, UsageError } from './main.js';

/** A terminal rewrites the status line in place; a log gets a line at most every few seconds. */
const LOG_PROGRESS_EVERY_MS = 5_000;

function processIo(): Io {
  const tty = Boolean(process.stderr.isTTY);
  let pending: string | undefined;
  let shownAt = 0;
  let open = false;
  return {
    out: (l) => void process.stdout.write(`${l}\n`),
    err: (l) => void process.stderr.write(`${l}\n`),
    progress(line) {
      if (tty) {
        process.stderr.write(`\r${line}\x1b[K`);
        open = true;
        return;
      }
      pending = line;
      if (Date.now() - shownAt >= LOG_PROGRESS_EVERY_MS) {
        process.stderr.write(`${line}\n`);
        shownAt = Date.now();
        pending = undefined;
      }
    },
    progressEnd() {
      if (open) process.stderr.write('\n');
      else if (pending !== undefined) process.stderr.write(`${pending}\n`);
      open = false;
      pending = undefined;
      shownAt = 0;
    },
    interactive: Boolean(process.stdin.isTTY && process.stderr.isTTY),
    async confirm(question) {
      const { createInterface } = await import('node:readline/promises');
      const rl = createInterface({ input: process.stdin, output: process.stderr });
      try {
        return /^y(es)?$/i.test((await rl.question(question)).trim());
      } finally {
        rl.close();
      }
    },
    clock: Date.now,
  };
}

export async function main(argv: string[]): Promise<number> {
  silenceSdkNodeVersionWarning();
  // `paybridge payments list | head`: the reader has gone; stop quietly instead of with a stack trace.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  try {
    return await runCli(
      argv,
      // Opened only by commands that read records, and only the adapter they need (issue 15).
      async (where) => (where.stage ? (await import('./context-aws.js')).awsContext(where.stage, where.region) : (await import('./context.js')).localContext()),
      processIo(),
    );
  } catch (err) {
    // The one useful line, and where the rest is: the whole help after it buried the line (issue 22).
    process.stderr.write(`paybridge: ${(err as Error).message}\n${err instanceof UsageError ? 'paybridge --help lists every command and option\n' : ''}`);
    return err instanceof UsageError ? 2 : 1;
  }
}
