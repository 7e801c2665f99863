import { randomBytes } from 'node:crypto';
import type { Fence } from '../core/types.js';
import { awsDeps, type AppDeps } from '../deps.js';
import { parseOperatorKeys } from '../http/operators.js';
import { sqsQueue } from '../queue/sqs.js';
import { AuditLog, browsePayments } from '../store/browse.js';
import { documentClient, DynamoLimiterStore, dynamoTable, makeDynamoClient } from '../store/dynamo.js';
import { DESCRIPTIONS } from '../systems/descriptions.js';
import { eventsRuntime } from '../events/runtime.js';
import type { ConsoleDeps } from './handler.js';
import { sessionSecret } from './session.js';

/** Fence ids of this container's console actions: its own id and a counter, like a worker's. */
function consoleFences(): () => Fence {
  const id = `console.${randomBytes(6).toString('base64url')}`;
  let n = 0;
  return () => ({ id, n: n++ });
}

/**
 * The console's wiring in AWS (functions/console.ts): the systems by description (it posts nothing: an
 * action makes a record due and queues it, and the system's worker sends it), the table, every system's
 * queue, and from SSM the common parameters (LOG_HASH_KEY keys the session cookie, RETRY_MESSAGE_KEY signs
 * what an action queues) and the console's own group (OPERATOR_KEYS). Rebuilt when a re-read parameter
 * changed, so a key removed from OPERATOR_KEYS ends its sessions within five minutes. Cookies are Secure:
 * API Gateway serves HTTPS only.
 */
export function awsConsoleDeps(env: Record<string, string | undefined> = process.env): () => Promise<ConsoleDeps> {
  const getApp = awsDeps({ descriptions: DESCRIPTIONS, table: dynamoTable, queue: sqsQueue, env });
  const fence = consoleFences();
  let cached: { app: AppDeps; deps: ConsoleDeps } | undefined;
  let dynamo: ReturnType<typeof makeDynamoClient> | undefined;
  return async () => {
    const app = await getApp();
    if (cached?.app === app) return cached.deps;
    const config = app.config;
    const hashKey = config.env.LOG_HASH_KEY;
    if (!hashKey) throw new Error('invalid configuration: LOG_HASH_KEY is required by the console: it keys the session cookie');
    const operators = parseOperatorKeys(config.env.OPERATOR_KEYS);
    if (operators.size === 0) app.log.warn('no OPERATOR_KEYS: nobody can sign in to the console', { parameter: `${config.env.SECRETS_PARAMETER_PREFIX ?? ''}/console/OPERATOR_KEYS` });
    // Its own client: the document client's options live on the client it wraps (shared/store/client.ts).
    dynamo ??= makeDynamoClient({ endpoint: config.DYNAMODB_ENDPOINT, region: config.AWS_REGION });
    const client = documentClient(dynamo);
    const deps: ConsoleDeps = {
      app,
      operators,
      secret: sessionSecret(hashKey),
      secure: true,
      audit: new AuditLog(client, config.TABLE_NAME, config.RECORD_TTL_DAYS, app.clock),
      browse: (o) => browsePayments(client, config.TABLE_NAME, o),
      fence,
      paymentEvents: (record) => eventsRuntime(app).store.paymentEvents(record),
      limiter: new DynamoLimiterStore(dynamo, config.TABLE_NAME),
    };
    cached = { app, deps };
    return deps;
  };
}
