import { GetParametersCommand, SSMClient } from '@aws-sdk/client-ssm';
import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { observed } from '../shared/aws/observe.js';
import { CALLER_NAME, decide, parseApiKeys, WEBHOOK_CALLER, type GateSettings, type NamedKey } from '../shared/http/authorizer.js';
import { createLogger, type Logger } from '../shared/log.js';

export interface AuthorizerDeps {
  /** The current API_KEYS, parsed (cached by the caller of SSM). */
  keys: () => Promise<readonly NamedKey[]>;
  gate: GateSettings;
  clock: () => number;
  log: Logger;
}

/**
 * The REQUEST authorizer on every route (issue 12; shared/http/authorizer.ts decides). No middy and
 * nothing of the application's wiring: it runs before every request, so its bundle holds only the
 * SSM client and the decision. A refusal throws `Unauthorized`, which API Gateway answers with 401
 * (the UNAUTHORIZED gateway response in serverless.yml shapes it as problem details).
 */
export const makeHandler = (getDeps: () => AuthorizerDeps) => async (event: APIGatewayRequestAuthorizerEvent): Promise<APIGatewayAuthorizerResult> => {
  const deps = getDeps();
  // Only an x-api-key is looked up in API_KEYS: a signed delivery passes on to the function, which
  // verifies it, even while API_KEYS cannot be read (below).
  const sendsKey = Object.keys(event.headers ?? {}).some((h) => h.toLowerCase() === 'x-api-key');
  const verdict = decide(event.headers, sendsKey ? await deps.keys() : [], deps.clock(), deps.gate);
  const route = `${event.httpMethod} ${event.resource}`;
  if (!verdict.allow) {
    deps.log.info('refused at the gateway', { route, requestId: event.requestContext?.requestId, reason: verdict.reason });
    throw new Error('Unauthorized');
  }
  return {
    principalId: `${verdict.method}:${verdict.caller}`,
    // Only the method called: with caching off (resultTtlInSeconds 0) a policy is never reused for another route.
    policyDocument: { Version: '2012-10-17', Statement: [{ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: event.methodArn }] },
    // Reaches the function as requestContext.authorizer.caller / .method.
    context: { caller: verdict.caller, method: verdict.method },
    usageIdentifierKey: verdict.usageIdentifierKey,
  };
};

/** API_KEYS is re-read after this long, as the functions re-read their secrets: a new key is live within five minutes. */
const KEYS_MAX_AGE_MS = 5 * 60_000;

/**
 * How long the last keys read stand in while SSM fails (issue 20 item 12): a brief SSM outage does not
 * refuse every POS integration, and a key removed from API_KEYS stops working at most this long after
 * the last successful read, however long SSM keeps failing. Then every x-api-key request fails (API
 * Gateway answers 500) until SSM answers again. docs/security.md states it.
 */
export const KEYS_MAX_STALE_MS = 15 * 60_000;

function required(env: Record<string, string | undefined>, name: string): string {
  const value = env[name];
  if (!value) throw new Error(`invalid configuration: ${name} is required by the authorizer`);
  return value;
}

/** The deployed wiring: API_KEYS from SSM (SecureString), the caller list and usage-key prefix from serverless.yml. */
export function awsAuthorizerDeps(env: Record<string, string | undefined> = process.env, ssm?: SSMClient): () => AuthorizerDeps {
  let deps: AuthorizerDeps | undefined;
  return () => {
    if (deps) return deps;
    const parameter = required(env, 'API_KEYS_PARAMETER');
    const prefix = required(env, 'USAGE_KEY_PREFIX');
    // May be empty (a stage with webhook callers only), but must be set: serverless.yml always sets it.
    if (env.CALLERS === undefined) throw new Error('invalid configuration: CALLERS is required by the authorizer');
    const callers = new Set(env.CALLERS.split(',').map((c) => c.trim()).filter(Boolean));
    for (const c of callers) if (!CALLER_NAME.test(c) || c === WEBHOOK_CALLER) throw new Error(`invalid configuration: CALLERS has an invalid caller name "${c}"`);
    const client = ssm ?? observed(new SSMClient({ region: env.AWS_REGION ?? 'eu-north-1' }), 'ssm');
    const log = createLogger({ service: 'paybridge', function: 'authorize' });
    let cached: { keys: readonly NamedKey[]; at: number } | undefined;
    const keys = async (): Promise<readonly NamedKey[]> => {
      if (cached && Date.now() - cached.at < KEYS_MAX_AGE_MS) return cached.keys;
      try {
        const out = await client.send(new GetParametersCommand({ Names: [parameter], WithDecryption: true }));
        const text = out.Parameters?.[0]?.Value ?? '';
        if (!text) log.warn('no API keys configured: every x-api-key is refused', { parameter });
        cached = { keys: parseApiKeys(text), at: Date.now() };
        return cached.keys;
      } catch (err) {
        // SSM briefly unavailable: the last known keys are better than refusing every POS integration,
        // for a while. Past KEYS_MAX_STALE_MS a revoked key must not still open the gate.
        const age = cached ? Date.now() - cached.at : Infinity;
        if (cached && age < KEYS_MAX_STALE_MS) {
          log.error('API_KEYS could not be re-read; using the last known keys', { error: err, ageSeconds: Math.round(age / 1000) });
          return cached.keys;
        }
        if (cached) {
          log.error('API_KEYS could not be re-read for too long; x-api-key requests fail until SSM answers', { error: err, ageSeconds: Math.round(age / 1000) });
          throw new Error(`API_KEYS could not be read for ${Math.floor(age / 60_000)} minutes (the last keys stand in for at most ${KEYS_MAX_STALE_MS / 60_000}): ${(err as Error).message}`);
        }
        throw err;
      }
    };
    deps = { keys, gate: { callers, usageKey: (caller) => `${prefix}${caller}` }, clock: Date.now, log };
    return deps;
  };
}

export const handler = makeHandler(awsAuthorizerDeps());
