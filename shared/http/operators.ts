import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Operator keys (`OPERATOR_KEYS`): who may sign in to the console and the local hooks. Operators are not
 * callers (DESIGN.md, "Callers"): a caller's `x-api-key` never opens the console.
 *
 * `OPERATOR_KEYS` is comma-separated; each entry is `name=key` (role operator), `name:viewer=key` or
 * `name:operator=key`. A viewer reads; an operator also acts (resolve, repost, redrive).
 */
export type OperatorRole = 'viewer' | 'operator';

export interface Operator {
  name: string;
  role: OperatorRole;
}

const ENTRY = /^([A-Za-z0-9._@-]{1,64})(?::(viewer|operator))?=(\S{16,256})$/;

/** Key → operator. Throws an Error naming OPERATOR_KEYS on a malformed entry (never echoing a key). */
export function parseOperatorKeys(raw: string | undefined): Map<string, Operator> {
  const keys = new Map<string, Operator>();
  if (!raw || raw.trim() === '') return keys;
  raw.split(',').forEach((part, i) => {
    const entry = part.trim();
    if (entry === '') return;
    const m = ENTRY.exec(entry);
    if (!m) {
      throw new Error(
        `OPERATOR_KEYS entry ${i + 1} is malformed: write name=key, name:viewer=key or name:operator=key (name of letters, digits, . _ @ -; key of 16 to 256 characters without spaces)`,
      );
    }
    const [, name, role, key] = m as unknown as [string, string, OperatorRole | undefined, string];
    if (keys.has(key)) throw new Error(`OPERATOR_KEYS entry ${i + 1} repeats the key of an earlier entry: give each operator a key of their own`);
    keys.set(key, { name, role: role ?? 'operator' });
  });
  return keys;
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/**
 * The operator whose key was presented. Every key is compared, each in constant time over fixed-length
 * digests, so neither the answer's time nor an early exit tells how much of a key matched.
 */
export function findOperator(keys: Map<string, Operator>, presented: string): Operator | undefined {
  const given = digest(presented);
  let found: Operator | undefined;
  for (const [key, operator] of keys) {
    if (timingSafeEqual(digest(key), given) && !found) found = operator;
  }
  return found;
}
