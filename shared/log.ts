import { createHmac, randomBytes } from 'node:crypto';

type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level | 'silent', number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

let processKey: string | undefined;

/**
 * The key of hashId: LOG_HASH_KEY (required in every deployed stage, config.ts; kept in .data/ by
 * `npm start`). Without one, a random key for this process: a constant default would let anyone who
 * knows it reverse a logged personId hash by trying every id, which takes well under a second.
 */
export function logHashKey(): string {
  const configured = process.env.LOG_HASH_KEY;
  if (configured) return configured;
  processKey ??= randomBytes(32).toString('hex');
  return processKey;
}

/**
 * A keyed hash for identifiers that are personal data (contactId, personId, the record key that
 * embeds them): logs can be correlated with a record without holding the identifier. Keyed, so a
 * short numeric id cannot be recovered by hashing every candidate without the key.
 */
export function hashId(value: string, key = logHashKey()): string {
  return createHmac('sha256', key).update(value).digest('hex').slice(0, 16);
}

/** Structured JSON lines on stdout: what CloudWatch Logs indexes. */
export function createLogger(base: LogFields = {}, level: string = process.env.LOG_LEVEL ?? 'info'): Logger {
  const threshold = ORDER[(level as Level) in ORDER ? (level as Level) : 'info'];
  const write = (lvl: Level, message: string, fields?: LogFields) => {
    if (ORDER[lvl] < threshold) return;
    const line = JSON.stringify({ level: lvl, time: new Date().toISOString(), message, ...base, ...fields }, errorReplacer);
    if (lvl === 'error' || lvl === 'warn') process.stderr.write(`${line}\n`);
    else process.stdout.write(`${line}\n`);
  };
  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
    child: (fields) => createLogger({ ...base, ...fields }, level),
  };
}

function errorReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message, stack: value.stack };
  return value;
}
