import { createHash, timingSafeEqual } from 'node:crypto';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { hashId } from '../log.js';
import { ProblemError } from './problem.js';

export interface AuthSettings {
  /** Accepted `x-api-key` values (POS integrations). */
  apiKeys: string[];
  /** Standard Webhooks secret, `whsec_...` (payment terminals). */
  webhookSecret?: string | undefined;
}

export interface Principal {
  method: 'api-key' | 'webhook';
  /** The caller's name, stored with the records it submits (absent until callers are named). */
  caller?: string;
  /** A hash of the credential: lets logs tell integrations apart without holding a secret. */
  id: string;
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Constant-time over every configured key: comparing digests keeps lengths equal and timing flat. */
function matchesApiKey(candidate: string, keys: string[]): boolean {
  const c = digest(candidate);
  let found = false;
  for (const key of keys) found = timingSafeEqual(c, digest(key)) || found;
  return found;
}

function unauthorized(detail: string): ProblemError {
  return new ProblemError(401, 'unauthorized', 'Authentication required', `${detail} Nothing was recorded.`, undefined, {}, {
    'www-authenticate': 'ApiKey header="x-api-key"',
  });
}

/**
 * Every route is closed: an `x-api-key`, or a Standard Webhooks signature over the raw body
 * (`webhook-id`, `webhook-timestamp`, `webhook-signature`), checked by the standardwebhooks
 * library (constant-time, ±5 minutes).
 */
export function authenticate(headers: Record<string, string | undefined>, rawBody: string, settings: AuthSettings): Principal {
  const apiKey = headers['x-api-key'];
  if (apiKey !== undefined) {
    if (settings.apiKeys.length > 0 && matchesApiKey(apiKey, settings.apiKeys)) return { method: 'api-key', id: hashId(apiKey) };
    throw unauthorized('The x-api-key is not valid.');
  }
  if (headers['webhook-signature'] !== undefined || headers['webhook-id'] !== undefined) {
    if (!settings.webhookSecret) throw unauthorized('Webhook signatures are not accepted here: no WEBHOOK_SECRET is configured.');
    const missing = ['webhook-id', 'webhook-timestamp', 'webhook-signature'].filter((h) => !headers[h]);
    if (missing.length > 0) throw unauthorized(`The webhook signature is incomplete: missing ${missing.join(', ')}.`);
    try {
      new Webhook(settings.webhookSecret).verify(rawBody, {
        'webhook-id': headers['webhook-id'] as string,
        'webhook-timestamp': headers['webhook-timestamp'] as string,
        'webhook-signature': headers['webhook-signature'] as string,
      });
    } catch (err) {
      const reason = err instanceof WebhookVerificationError ? err.message : 'the signature could not be verified';
      throw unauthorized(`The webhook signature was not accepted: ${reason}.`);
    }
    return { method: 'webhook', id: hashId(headers['webhook-id'] as string) };
  }
  throw unauthorized('Send an x-api-key header, or sign the request as a Standard Webhook.');
}
