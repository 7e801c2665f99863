import { GetParametersCommand, SSMClient } from '@aws-sdk/client-ssm';
import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { observed } from '../shared/aws/observe.js';
import { consoleGate, isOpen } from '../shared/console/gate.js';
import { sessionSecret } from '../shared/console/session.js';
import { parseOperatorKeys, type Operator } from '../shared/http/operators.js';
import { createLogger, type Logger } from '../shared/log.js';

export interface ConsoleAuthorizerDeps {
  /** The session key (from LOG_HASH_KEY) and OPERATOR_KEYS, read from SSM and cached. */
  session: () => Promise<{ secret: Buffer; operators: Map<string, Operator> }>;
  clock: () => number;
  log: Logger;
}

/**
 * The console's own REQUEST authorizer (issue 22; shared/console/gate.ts decides). The callers' authorizer
 * (functions/authorize.ts) admits x-api-key callers and would refuse an operator, who has no API key; this
 * one admits operator sessions and refuses callers' credentials outright. A refusal throws `Unauthorized`,
 * which API Gateway answers with 401 before the console function runs.
 */
export const makeHandler = (getDeps: () => ConsoleAuthorizerDeps) => async (event: APIGatewayRequestAuthorizerEvent): Promise<APIGatewayAuthorizerResult> => {
  const deps = getDeps();
  const method = event.httpMethod;
  // The path without the stage (a REST authorizer's event carries it as the function's event does).
  const path = event.path ?? '';
  // The page and the sign-in need no secret: they pass even while SSM cannot be read.
  const verdict = consoleGate({ method, path, headers: event.headers }, isOpen(method, path) ? undefined : await deps.session(), deps.clock());
  if (!verdict.allow) {
    deps.log.info('refused at the console gate', { route: `${method} ${event.resource}`, requestId: event.requestContext?.requestId, reason: verdict.reason });
    throw new Error('Unauthorized');
  }
  return {
    principalId: verdict.kind === 'session' ? `operator:${verdict.operator.name}` : 'console:open',
    // Only the method called: with caching off (resultTtlInSeconds 0) a policy is never reused for another request.
    policyDocument: { Version: '2012-10-17', Statement: [{ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: event.methodArn }] },
    // The access log's caller and method columns (serverless.yml); the function reads the cookie itself.
    context: verdict.kind === 'session' ? { caller: `operator:${verdict.operator.name}`, method: 'console-session' } : { caller: '', method: 'console-open' },
  };
};

/** As the functions re-read their parameters: a key removed from OPERATOR_KEYS is refused here within five minutes (the function's own check sooner or at the same time). */
const MAX_AGE_MS = 5 * 60_000;

function required(env: Record<string, string | undefined>, name: string): string {
  const value = env[name];
  if (!value) throw new Error(`invalid configuration: ${name} is required by the console authorizer`);
  return value;
}

/** The deployed wiring: OPERATOR_KEYS and LOG_HASH_KEY from SSM (SecureStrings), the two names from serverless.yml. */
export function awsConsoleAuthorizerDeps(env: Record<string, string | undefined> = process.env, ssm?: SSMClient): () => ConsoleAuthorizerDeps {
  let deps: ConsoleAuthorizerDeps | undefined;
  return () => {
    if (deps) return deps;
    const keysName = required(env, 'OPERATOR_KEYS_PARAMETER');
    const hashKeyName = required(env, 'LOG_HASH_KEY_PARAMETER');
    const client = ssm ?? observed(new SSMClient({ region: env.AWS_REGION ?? 'eu-north-1' }), 'ssm');
    const log = createLogger({ service: 'paybridge', function: 'consoleAuthorize' });
    let cached: { value: { secret: Buffer; operators: Map<string, Operator> }; at: number } | undefined;
    const session = async () => {
      if (cached && Date.now() - cached.at < MAX_AGE_MS) return cached.value;
      // No stale fallback as the callers' authorizer has: a console that cannot read its keys refuses (the
      // function itself would fail the same way), rather than keep a removed operator in.
      const out = await client.send(new GetParametersCommand({ Names: [keysName, hashKeyName], WithDecryption: true }));
      const value = (name: string) => out.Parameters?.find((p) => p.Name === name)?.Value ?? '';
      const hashKey = value(hashKeyName);
      if (!hashKey) throw new Error(`the console authorizer could not read ${hashKeyName}`);
      const operators = parseOperatorKeys(value(keysName));
      if (operators.size === 0) log.warn('no OPERATOR_KEYS: nobody can sign in to the console', { parameter: keysName });
      cached = { value: { secret: sessionSecret(hashKey), operators }, at: Date.now() };
      return cached.value;
    };
    deps = { session, clock: Date.now, log };
    return deps;
  };
}

export const handler = makeHandler(awsConsoleAuthorizerDeps());
