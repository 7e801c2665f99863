/**
 * What a command may do to the person running it: print, show progress, ask. Kept apart from main.ts
 * so the commands main.ts loads on demand (simulate among them) do not import main.ts back.
 */
export interface Io {
  out(line: string): void;
  err(line: string): void;
  /** One status line kept up to date while work goes on (rewritten in place on a terminal). */
  progress(line: string): void;
  /** Ends the status line, so what follows starts on a line of its own. */
  progressEnd(): void;
  /** True when a person can answer `confirm`: stdin and stderr are a terminal. */
  interactive: boolean;
  /** Asks a yes/no question; only called when `interactive`. */
  confirm(question: string): Promise<boolean>;
  clock(): number;
}

/** The caller's mistake: printed with the usage text, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/**
 * Goes ahead with `--yes`, otherwise asks. Without a terminal there is nobody to ask: that is said,
 * naming --yes, rather than refusing in silence (issue 15).
 */
export async function confirmed(io: Io, yes: boolean | undefined, question: string, refusal: string): Promise<boolean> {
  if (yes) return true;
  if (!io.interactive) {
    io.err(`${refusal}: this asks for confirmation and there is no terminal to ask on; run it again with --yes to go ahead`);
    return false;
  }
  if (await io.confirm(`${question} [y/N] `)) return true;
  io.err(refusal);
  return false;
}
