import { createHash, timingSafeEqual } from 'node:crypto';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { hashId } from '../log.js';
import { WEBHOOK_CALLER } from './authorizer.js';
import { parseWebhookSecrets, type ApiKey } from './callers.js';
import { ProblemError } from './problem.js';
import type { CallerScope } from './scopes.js';

export interface AuthSettings {
  /** Accepted `x-api-key` values (POS integrations), each with the caller it names. */
  apiKeys: readonly ApiKey[];
  /** WEBHOOK_SECRET as configured: `whsec_...` or `sender=whsec_...`, separated by spaces (payment terminals). */
  webhookSecret?: string | undefined;
  /** CALLER_SCOPES by caller name (issue 20, item 5); a caller not in it may use everything. */
  scopes?: ReadonlyMap<string, CallerScope>;
}

export interface Principal {
  method: 'api-key' | 'webhook';
  /** The caller's name (the key's or the webhook sender's), stored with the records it submits. */
  caller: string;
  /** A hash of the credential: lets logs tell integrations apart without holding a secret. */
  id: string;
  /** What the caller may post to and read (shared/http/scopes.ts); absent: everything. */
  scope?: CallerScope;
}

/** What API Gateway's authorizer said about the request (`requestContext.authorizer`); absent locally. */
export interface GatewayIdentity {
  caller?: string | undefined;
  method?: string | undefined;
}

/** The longest webhook-id accepted, as the gate (shared/http/authorizer.ts): it becomes part of a DynamoDB key. */
export const MAX_WEBHOOK_ID_LENGTH = 256;

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Constant-time over every configured key: each is compared, whichever matched; digests keep lengths equal. */
function matchApiKey(candidate: string, keys: readonly ApiKey[]): ApiKey | undefined {
  const c = digest(candidate);
  let found: ApiKey | undefined;
  for (const key of keys) if (timingSafeEqual(c, digest(key.key)) && found === undefined) found = key;
  return found;
}

function unauthorized(detail: string): ProblemError {
  return new ProblemError(401, 'unauthorized', 'Authentication required', `${detail} Nothing was recorded.`, undefined, {}, {
    'www-authenticate': 'ApiKey header="x-api-key"',
  });
}

interface Verifier {
  sender: string;
  webhook: Webhook;
}

/** Parsed once per distinct WEBHOOK_SECRET text (it changes only when the parameters are re-read). */
let verifiers: { text: string | undefined; list: Verifier[] } | undefined;

function verifiersOf(text: string | undefined): Verifier[] {
  if (verifiers && verifiers.text === text) return verifiers.list;
  const list = parseWebhookSecrets(text).map((s) => ({ sender: s.sender, webhook: new Webhook(s.secret) }));
  verifiers = { text, list };
  return list;
}

/**
 * Which sender signed the delivery. Every secret is tried, whichever verified first (rotation keeps
 * two of one sender valid at once; senders never share a secret, config.ts refuses that), so the time
 * taken does not tell which one matched.
 */
function verifyWebhook(headers: Record<string, string | undefined>, rawBody: string, list: readonly Verifier[]): string {
  const signed = { 'webhook-id': headers['webhook-id'] as string, 'webhook-timestamp': headers['webhook-timestamp'] as string, 'webhook-signature': headers['webhook-signature'] as string };
  let sender: string | undefined;
  let reason: string | undefined;
  for (const v of list) {
    try {
      // jsonParse off: the body's JSON is the route's business (a 400 naming the error), not authentication's.
      v.webhook.verify(rawBody, signed, { jsonParse: false });
      sender ??= v.sender;
    } catch (err) {
      reason ??= err instanceof WebhookVerificationError ? err.message : 'the signature could not be verified';
    }
  }
  if (sender === undefined) throw unauthorized(`The webhook signature was not accepted: ${reason ?? 'no secret verified it'}.`);
  return sender;
}

function ownCheck(headers: Record<string, string | undefined>, rawBody: string, settings: AuthSettings): Principal {
  const apiKey = headers['x-api-key'];
  if (apiKey !== undefined) {
    const key = matchApiKey(apiKey, settings.apiKeys);
    if (key) return { method: 'api-key', caller: key.caller, id: hashId(apiKey) };
    throw unauthorized('The x-api-key is not valid.');
  }
  if (headers['webhook-signature'] !== undefined || headers['webhook-id'] !== undefined) {
    const list = verifiersOf(settings.webhookSecret);
    if (list.length === 0) throw unauthorized('Webhook signatures are not accepted here: no WEBHOOK_SECRET is configured.');
    const missing = ['webhook-id', 'webhook-timestamp', 'webhook-signature'].filter((h) => !headers[h]);
    if (missing.length > 0) throw unauthorized(`The webhook signature is incomplete: missing ${missing.join(', ')}.`);
    if ((headers['webhook-id'] as string).length > MAX_WEBHOOK_ID_LENGTH) throw unauthorized(`The webhook-id is longer than ${MAX_WEBHOOK_ID_LENGTH} characters.`);
    const sender = verifyWebhook(headers, rawBody, list);
    return { method: 'webhook', caller: sender, id: hashId(headers['webhook-id'] as string) };
  }
  throw unauthorized('Send an x-api-key header, or sign the request as a Standard Webhook.');
}

/**
 * Every route is closed: an `x-api-key`, or a Standard Webhooks signature over the raw body
 * (`webhook-id`, `webhook-timestamp`, `webhook-signature`), checked by the standardwebhooks
 * library (constant-time, ±5 minutes). The caller is the key's name or the webhook's sender.
 *
 * In AWS the gate (functions/authorize.ts) has already named the caller from the same API_KEYS; its
 * name is used when it agrees with this check. They disagree only while one of them still holds
 * API_KEYS from before a change (each re-reads it within five minutes): the request is then refused
 * rather than stored under a caller one of them thinks is wrong. For a webhook the gate names only
 * the shared webhook plan (it never sees the body, so it cannot tell the sender): the sender comes
 * from the signature.
 */
export function authenticate(headers: Record<string, string | undefined>, rawBody: string, settings: AuthSettings, gateway?: GatewayIdentity): Principal {
  const principal = identify(headers, rawBody, settings, gateway);
  const scope = settings.scopes?.get(principal.caller);
  return scope ? { ...principal, scope } : principal;
}

/** Who the request is from: this function's own check, agreed with the gateway's where there is one. */
function identify(headers: Record<string, string | undefined>, rawBody: string, settings: AuthSettings, gateway?: GatewayIdentity): Principal {
  const principal = ownCheck(headers, rawBody, settings);
  if (!gateway || (gateway.caller === undefined && gateway.method === undefined)) return principal;
  const consistent = gateway.method === principal.method && (principal.method === 'webhook' ? gateway.caller === WEBHOOK_CALLER : gateway.caller === principal.caller);
  if (!consistent) {
    throw unauthorized('The gateway and the function disagree about the caller (API_KEYS changed within the last five minutes?). Send the request again in a few minutes.');
  }
  return principal.method === 'api-key' ? { ...principal, caller: gateway.caller as string } : principal;
}
