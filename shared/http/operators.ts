import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Operators are not callers (DESIGN.md, "Public interface"): they sign in to the console and the local
 * hooks with keys of their own, from `OPERATOR_KEYS`. Comma-separated entries `name=key` (role
 * `operator`) or `name:viewer=key` / `name:operator=key`. A `viewer` reads; an `operator` also acts.
 * An API key never opens anything here, so the dev key `npm start` publishes reads no secret.
 */

export type OperatorRole = 'viewer' | 'operator';

export interface Operator {
  name: string;
  role: OperatorRole;
}

/** Operator names as caller names are written: lower-case words joined by dashes (they go into the audit log). */
const NAME = /^(?=.{1,40}$)[a-z0-9]+(-[a-z0-9]+)*$/;
/** Shorter keys could be guessed by trying; a generated key is 43 characters (32 random bytes, base64url). */
export const MIN_OPERATOR_KEY_LENGTH = 16;

/** key → operator. Throws an Error naming OPERATOR_KEYS (never the key) on a malformed entry. */
export function parseOperatorKeys(raw: string | undefined): Map<string, Operator> {
  const out = new Map<string, Operator>();
  const entries = (raw ?? '').split(',').map((e) => e.trim()).filter(Boolean);
  for (const [i, entry] of entries.entries()) {
    const eq = entry.indexOf('=');
    const where = `OPERATOR_KEYS entry ${i + 1}`;
    if (eq <= 0) throw new Error(`invalid configuration: ${where} must be name=key, name:viewer=key or name:operator=key`);
    const [name = '', role = 'operator', ...extra] = entry.slice(0, eq).trim().split(':');
    const key = entry.slice(eq + 1).trim();
    if (!NAME.test(name)) throw new Error(`invalid configuration: ${where} has an invalid name (lower-case letters and digits joined by dashes, at most 40)`);
    if (extra.length > 0 || (role !== 'viewer' && role !== 'operator')) throw new Error(`invalid configuration: ${where} (${name}) has an unknown role: use viewer or operator`);
    if (key.length < MIN_OPERATOR_KEY_LENGTH) throw new Error(`invalid configuration: ${where} (${name}) has a key shorter than ${MIN_OPERATOR_KEY_LENGTH} characters`);
    if (out.has(key)) throw new Error(`invalid configuration: ${where} (${name}) repeats the key of another entry`);
    out.set(key, { name, role });
  }
  return out;
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Constant-time over every configured key: each one is compared, whichever matched; digests keep lengths equal. */
export function findOperator(keys: Map<string, Operator>, presented: string): Operator | undefined {
  const candidate = digest(presented);
  let found: Operator | undefined;
  for (const [key, operator] of keys) if (timingSafeEqual(candidate, digest(key)) && found === undefined) found = operator;
  return found;
}
