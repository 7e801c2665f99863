import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * The API Gateway gate in front of every route (issue 12), as pure functions: which caller a request
 * belongs to, so API Gateway can apply that caller's usage plan (`apiKeySourceType: AUTHORIZER`).
 *
 * It is not the authentication of record. A REST API authorizer never sees the body, so a webhook's
 * signature cannot be checked here: the gate only lets through a complete and fresh Standard Webhooks
 * header set, and the function verifies the signature over the raw body as it always did
 * (shared/http/auth.ts). An x-api-key is checked in both places, against the same API_KEYS.
 */

/** Standard Webhooks' tolerance, the same the function applies. */
export const WEBHOOK_TOLERANCE_SECONDS = 5 * 60;

/** The usage plan every webhook-signed request is metered by: terminals carry no API key. */
export const WEBHOOK_CALLER = 'webhooks';

/**
 * Caller names as usage plans and API Gateway key names use them: lower-case words joined by single
 * dashes, at most 40 characters (the stack turns them into CloudFormation ids, which allow no dash).
 */
export const CALLER_NAME = /^(?=.{1,40}$)[a-z0-9]+(-[a-z0-9]+)*$/;

export interface NamedKey {
  /** The caller an entry `name=key` names; none for a bare key (its caller would be the secret itself). */
  caller: string | undefined;
  digest: Buffer;
}

export interface GateSettings {
  /** Callers deployed with an API Gateway key and usage plan (serverless.yml `custom.api.callers`). */
  callers: ReadonlySet<string>;
  /** The API Gateway key value that stands for a caller's usage plan. */
  usageKey: (caller: string) => string;
}

export type Verdict =
  | { allow: true; caller: string; method: 'api-key' | 'webhook'; usageIdentifierKey: string }
  | { allow: false; reason: string };

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/**
 * API_KEYS as DESIGN.md defines it: comma-separated, `name=key` names its caller, a bare key is its
 * own caller. Only digests are kept, so a comparison takes the same time whatever the key's length.
 * A bare key has no name a usage plan could carry (and its own value must never be logged): it is
 * refused below.
 */
export function parseApiKeys(text: string): NamedKey[] {
  return text
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean)
    .map((entry) => {
      const { name, key } = splitApiKeyEntry(entry);
      return { caller: name, digest: digest(key) };
    });
}

/**
 * One API_KEYS entry: `name=key`, or a bare key. The gate and the functions split entries with this
 * one rule, so they never disagree on who a key belongs to. Base64 keys (`openssl rand -base64 32`)
 * end in `=` padding: an entry whose only `=` are at its end is a bare key, not a name with an empty key.
 */
export function splitApiKeyEntry(entry: string): { name?: string; key: string } {
  const eq = entry.indexOf('=');
  if (eq <= 0 || /^=+$/.test(entry.slice(eq))) return { key: entry };
  return { name: entry.slice(0, eq).trim(), key: entry.slice(eq + 1).trim() };
}

/** Constant-time over every key: each one is compared, whichever matched. */
function match(candidate: string, keys: readonly NamedKey[]): NamedKey | undefined {
  const c = digest(candidate);
  let found: NamedKey | undefined;
  for (const key of keys) if (timingSafeEqual(c, key.digest) && found === undefined) found = key;
  return found;
}

/** One `v1,<base64 of an HMAC-SHA256>` among the space-separated signatures: what the standard's senders produce. */
const V1_SIGNATURE = /^v1,[A-Za-z0-9+/]{43}=$/;

function webhookProblem(headers: Record<string, string | undefined>, nowMs: number): string | undefined {
  const id = headers['webhook-id'];
  const timestamp = headers['webhook-timestamp'];
  const signature = headers['webhook-signature'];
  const missing = [['webhook-id', id], ['webhook-timestamp', timestamp], ['webhook-signature', signature]].filter(([, v]) => !v).map(([name]) => name);
  if (missing.length > 0) return `incomplete webhook headers: missing ${missing.join(', ')}`;
  if ((id as string).length > 256) return 'webhook-id longer than 256 characters';
  if (!/^\d{1,12}$/.test(timestamp as string)) return 'webhook-timestamp is not whole seconds';
  const skew = Math.abs(nowMs / 1000 - Number(timestamp));
  if (skew > WEBHOOK_TOLERANCE_SECONDS) return `webhook-timestamp is ${Math.round(skew)} s away from now (tolerance ${WEBHOOK_TOLERANCE_SECONDS} s)`;
  if (!(signature as string).split(' ').some((s) => V1_SIGNATURE.test(s))) return 'webhook-signature has no v1 signature';
  return undefined;
}

/**
 * The gate's decision. The same precedence as the function's own check: an x-api-key, when sent,
 * decides alone (a bad key is refused even if webhook headers come with it).
 */
export function decide(rawHeaders: Record<string, string | undefined> | null | undefined, keys: readonly NamedKey[], nowMs: number, gate: GateSettings): Verdict {
  const headers: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(rawHeaders ?? {})) headers[k.toLowerCase()] = v ?? undefined;
  const apiKey = headers['x-api-key'];
  if (apiKey !== undefined) {
    const key = match(apiKey, keys);
    if (!key) return { allow: false, reason: 'unknown x-api-key' };
    // A key without a deployed usage plan cannot be metered; the reason names the fix, never the key.
    if (key.caller === undefined) return { allow: false, reason: 'x-api-key is a bare entry of API_KEYS: name its caller (name=key) and deploy that caller' };
    if (!gate.callers.has(key.caller) || key.caller === WEBHOOK_CALLER) return { allow: false, reason: `x-api-key of a caller without a usage plan (${key.caller}): add it to custom.api.callers` };
    return { allow: true, caller: key.caller, method: 'api-key', usageIdentifierKey: gate.usageKey(key.caller) };
  }
  const problem = webhookProblem(headers, nowMs);
  if (problem) return { allow: false, reason: headers['webhook-id'] || headers['webhook-signature'] ? problem : 'no x-api-key and no webhook signature' };
  return { allow: true, caller: WEBHOOK_CALLER, method: 'webhook', usageIdentifierKey: gate.usageKey(WEBHOOK_CALLER) };
}
