import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Fence } from '../core/types.js';
import type { RetryQueue } from '../queue/port.js';
import type { RecordStore } from '../store/port.js';

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
    headers: { 'x-api-key': file.apiKey, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) throw new Error(`the local stack answered ${res.status} to ${hook}`);
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
  const { DynamoRecordStore, makeDynamoClient } = await import('../store/dynamo.js');
  return {
    where: `local stack at ${file.apiUrl}`,
    store: new DynamoRecordStore(makeDynamoClient({ endpoint: file.dynamoEndpoint }), file.tableName),
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
