import { createHash } from 'node:crypto';
import { CALLER_NAME, splitApiKeyEntry } from './authorizer.js';

/**
 * Who may call (issue 12). A caller is a name: the records it submits carry it, and the read routes
 * show a record only to the caller that submitted it. `API_KEYS` and `WEBHOOK_SECRET` both name
 * callers, in one namespace, so a terminal provider's webhook sender and the x-api-key it reads
 * statuses with are one caller when the operator gives them the same name.
 */

/** The sender of a bare `whsec_...` entry of WEBHOOK_SECRET. */
export const DEFAULT_WEBHOOK_SENDER = 'webhook';

export interface ApiKey {
  caller: string;
  key: string;
}

export interface WebhookSecret {
  sender: string;
  /** `whsec_...`, as configured. */
  secret: string;
}

/** A configuration value that names callers wrongly; the message never holds a key or secret. */
export class CallerConfigError extends Error {
  override readonly name = 'CallerConfigError';
}

/**
 * The caller of a bare key (an entry without `name=`, as API_KEYS held before callers had names): a
 * hash of the key, so it stays the same caller across restarts and LOG_HASH_KEY rotations. Unkeyed on
 * purpose (a keyed one would change the tenant when the log key changes); keys are random, so the
 * hash gives nothing away. The colon keeps it apart from every name an entry may give (CALLER_NAME).
 */
export function bareKeyCaller(key: string): string {
  return `key:${createHash('sha256').update(key).digest('hex').slice(0, 16)}`;
}

function checkName(name: string, variable: string, position: number): void {
  if (!CALLER_NAME.test(name)) {
    throw new CallerConfigError(`${variable}: entry ${position} names its caller "${name.slice(0, 40)}", which is not lower-case letters and digits joined by single dashes, at most 40 characters`);
  }
}

/** API_KEYS: comma-separated, `name=key` names its caller, a bare key is its own caller. */
export function parseApiKeyEntries(text: string): ApiKey[] {
  const out: ApiKey[] = [];
  const owner = new Map<string, string>();
  text
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)
    .forEach((entry, i) => {
      const { name, key } = splitApiKeyEntry(entry);
      if (name !== undefined) checkName(name, 'API_KEYS', i + 1);
      if (key === '') throw new CallerConfigError(`API_KEYS: entry ${i + 1} (${name}) has an empty key`);
      const caller = name ?? bareKeyCaller(key);
      // One key, two callers: whichever matched first would own the other's payments.
      const before = owner.get(key);
      if (before !== undefined && before !== caller) throw new CallerConfigError(`API_KEYS: entry ${i + 1} gives a key that entry for ${before} already has to another caller`);
      owner.set(key, caller);
      out.push({ caller, key });
    });
  return out;
}

/**
 * WEBHOOK_SECRET: entries separated by spaces, each `whsec_...` (sender `webhook`) or
 * `sender=whsec_...`. Several entries of one sender are a rotation: each of them verifies.
 */
export function parseWebhookSecrets(text: string | undefined): WebhookSecret[] {
  const out: WebhookSecret[] = [];
  const owner = new Map<string, string>();
  (text ?? '')
    .split(/\s+/)
    .filter(Boolean)
    .forEach((entry, i) => {
      const eq = entry.startsWith('whsec_') ? -1 : entry.indexOf('=');
      const sender = eq > 0 ? entry.slice(0, eq) : DEFAULT_WEBHOOK_SENDER;
      const secret = eq > 0 ? entry.slice(eq + 1) : entry;
      if (eq > 0) checkName(sender, 'WEBHOOK_SECRET', i + 1);
      if (!/^whsec_[A-Za-z0-9+/=]+$/.test(secret)) throw new CallerConfigError(`WEBHOOK_SECRET: entry ${i + 1} is not a Standard Webhooks secret (whsec_ followed by base64)`);
      // One secret, two senders: a delivery it signs could be stored under either.
      const before = owner.get(secret);
      if (before !== undefined && before !== sender) throw new CallerConfigError(`WEBHOOK_SECRET: entry ${i + 1} gives the secret of sender ${before} to sender ${sender}`);
      owner.set(secret, sender);
      out.push({ sender, secret });
    });
  return out;
}
