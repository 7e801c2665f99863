import { parseArgs } from 'node:util';
import type { CliContext } from './context.js';
import { UsageError, type Io } from './io.js';

/**
 * The command line and what each command is given. Apart from main.ts so that the commands, which
 * main.ts imports on demand, never import main.ts back.
 */

const OPTIONS = {
  status: { type: 'string', multiple: true },
  system: { type: 'string', multiple: true },
  since: { type: 'string' },
  limit: { type: 'string' },
  cursor: { type: 'string' },
  caller: { type: 'string' },
  'key-prefix': { type: 'string' },
  json: { type: 'boolean' },
  posted: { type: 'boolean' },
  'not-posted': { type: 'boolean' },
  repost: { type: 'boolean' },
  evidence: { type: 'string' },
  reason: { type: 'string' },
  yes: { type: 'boolean', short: 'y' },
  by: { type: 'string' },
  n: { type: 'string' },
  dup: { type: 'string' },
  storm: { type: 'string' },
  header: { type: 'string', multiple: true },
  fault: { type: 'string', multiple: true },
  wait: { type: 'boolean' },
  method: { type: 'string' },
  url: { type: 'string' },
  id: { type: 'string' },
  secret: { type: 'string' },
  stage: { type: 'string' },
  region: { type: 'string' },
  endpoint: { type: 'string' },
  count: { type: 'string' },
  timeout: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

/** Where a command works: the local stack, or a deployed stage. */
export interface Where {
  stage?: string;
  region: string;
}

/** What every command gets: its arguments, the terminal, and the records (opened only when asked for). */
export interface Run {
  values: Values;
  args: string[];
  io: Io;
  ctx: () => Promise<CliContext>;
  now: number;
  by: string;
}

export function parseCommandLine(argv: string[]) {
  try {
    return parseArgs({ args: argv, allowPositionals: true, strict: true, options: OPTIONS });
  } catch (err) {
    // node:util's messages name the option ("Unknown option '--stats'"); they are the caller's mistake.
    throw new UsageError((err as Error).message);
  }
}

