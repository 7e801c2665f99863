import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { LimiterState } from '../core/pacing.js';
import type { Fence } from '../core/types.js';
import type { RetryQueue } from '../queue/port.js';
import type { RecordStore } from '../store/port.js';
import type { AuditLog } from '../store/browse.js';

/** How long an audit entry the CLI writes is kept: RECORD_TTL_DAYS's default, as long as the records. */
export const AUDIT_TTL_DAYS = Number(process.env.RECORD_TTL_DAYS ?? 400) || 400;

export interface DeadLetters {
  count(): Promise<number>;
  /** Moves every message back to the retry queue; reports progress as it goes. */
  redrive(progress: (moved: number) => void): Promise<number>;
}

export interface CliContext {
  where: string;
  store: RecordStore;
  queue: RetryQueue;
  /** Fences for the attempts an operator's action queues (unique to this run of the command). */
  fence: () => Fence;
  deadLetters: DeadLetters;
  /** The audit log operator actions are kept in (the console's too); `paybridge audit` reads it. */
  audit?: AuditLog;
  /** Each system's shared rate limiter item (`limiter#<system>`), read only: `paybridge limits`. */
  limiter?: { read(system: string): Promise<LimiterState> };
  /** The local stack's API and sandboxes (simulate only runs there). */
  local?: { apiUrl: string; apiKey: string; sandboxes: Record<string, string | undefined> };
}

/** What `npm start` writes to `.data/local.json` (shared/local/start.ts). */
export interface LocalFile {
  /** The npm start process (to tell a live stack's file from one left by a killed process). */
  pid?: number;
  apiUrl: string;
  apiKey: string;
  dynamoEndpoint: string;
  tableName: string;
  sandboxes: Record<string, string | undefined>;
  /** npm start's event receiver (events out, issue 21): `paybridge events tail` reads it. */
  eventReceiver?: string;
  /** The stack's LOG_HASH_KEY file, when it keeps one (not when LOG_HASH_KEY was given to npm start). */
  logHashKeyFile?: string;
  /** The operator key's file (owner-only), when npm start made one (OPERATOR_KEYS unset). */
  operatorKeyFile?: string;
}

/**
 * The operator key this command presents to the local hooks: PAYBRIDGE_OPERATOR_KEY (one of the
 * stack's OPERATOR_KEYS), else the key npm start made and keeps owner-only. Never an API key: callers
 * hold those, and the hooks hand out the stack's secrets.
 */
export function localOperatorKey(file: Pick<LocalFile, 'operatorKeyFile'>, env: Record<string, string | undefined> = process.env): string {
  const given = env.PAYBRIDGE_OPERATOR_KEY?.trim();
  if (given) return given;
  if (file.operatorKeyFile) {
    try {
      const key = readFileSync(file.operatorKeyFile, 'utf8').trim();
      if (key) return key;
    } catch {
      // Reported below, with what to do.
    }
  }
  throw new Error(
    file.operatorKeyFile
      ? `the local stack's operator key (${file.operatorKeyFile}) cannot be read by this user: run as the user that ran npm start, or set PAYBRIDGE_OPERATOR_KEY`
      : 'the local stack runs with OPERATOR_KEYS: set PAYBRIDGE_OPERATOR_KEY to one of its operator keys',
  );
}

export function localFilePath(): string {
  return process.env.PAYBRIDGE_LOCAL_FILE ?? '.data/local.json';
}

/** The running `npm start`, or undefined when none has written its file. */
export function readLocalFile(path = localFilePath()): LocalFile | undefined {
  try {
    return JSON.parse(readFileSync(resolve(path), 'utf8')) as LocalFile;
  } catch {
    return undefined;
  }
}

async function localHook(file: LocalFile, hook: string, body: unknown = {}): Promise<Record<string, number>> {
  const res = await fetch(`${file.apiUrl}/__local/${hook}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${localOperatorKey(file)}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) {
    const problem = (await res.json().catch(() => undefined)) as { detail?: string } | undefined;
    throw new Error(`the local stack answered ${res.status} to ${hook}${problem?.detail ? `: ${problem.detail}` : ''}`);
  }
  return (await res.json()) as Record<string, number>;
}

/** Fence ids of one run of the command: its own id and a counter, like a worker's. */
export function fenceMinter(): () => Fence {
  const id = `cli.${randomBytes(6).toString('base64url')}`;
  let n = 0;
  return () => ({ id, n: n++ });
}

/**
 * The running stack's hash key for this command's `ref:` hashes, so `payments show` names personal data
 * as the status route and the logs do. Without it (no file, or not readable) a random key per call:
 * still nothing shown in clear, only not comparable.
 */
function useStackHashKey(file: LocalFile): void {
  if (process.env.LOG_HASH_KEY || !file.logHashKeyFile) return;
  try {
    const key = readFileSync(file.logHashKeyFile, 'utf8').trim();
    if (key.length >= 16) process.env.LOG_HASH_KEY = key;
  } catch {
    // Left to the random key.
  }
}

/**
 * The running `npm start`, found through the file it writes. The DynamoDB client is loaded here, not
 * at the top, so commands that need no records (help, sign) start without the AWS SDK.
 */
export async function localContext(path = localFilePath()): Promise<CliContext> {
  const file = readLocalFile(path);
  if (!file) throw new Error(`no local stack found (${path} is missing): start one with npm start, or pass --stage for a deployed stage`);
  useStackHashKey(file);
  const [{ DynamoRecordStore, DynamoLimiterStore, makeDynamoClient, documentClient }, { AuditLog }] = await Promise.all([import('../store/dynamo.js'), import('../store/browse.js')]);
  const client = makeDynamoClient({ endpoint: file.dynamoEndpoint });
  return {
    where: `local stack at ${file.apiUrl}`,
    store: new DynamoRecordStore(client, file.tableName),
    limiter: new DynamoLimiterStore(client, file.tableName),
    audit: new AuditLog(documentClient(client), file.tableName, AUDIT_TTL_DAYS),
    queue: { send: async (message, delaySeconds) => void (await localHook(file, 'enqueue', { pk: message.pk, delaySeconds, message })) },
    fence: fenceMinter(),
    deadLetters: {
      count: async () => (await localHook(file, 'dlq')).count ?? 0,
      redrive: async (progress) => {
        const moved = (await localHook(file, 'dlq/redrive')).moved ?? 0;
        progress(moved);
        return moved;
      },
    },
    local: { apiUrl: file.apiUrl, apiKey: file.apiKey, sandboxes: file.sandboxes },
  };
}
