import { awsDeps, type AppDeps } from '../shared/deps.js';
import { handleEvents } from '../shared/events/api.js';
import { httpRoute } from '../shared/http/route.js';
import { logInvocation } from '../shared/log.js';
import { dynamoTable } from '../shared/store/dynamo.js';

/** `/v1/event-endpoints` and `/v1/events` (issue 21): a caller's endpoints, its events and their deliveries. */
export const makeHandler = (getDeps: () => Promise<AppDeps>) =>
  httpRoute({
    getDeps,
    // Bodies are optional here (DELETE, test, resend take none): shared/events/api.ts parses them.
    takesBody: false,
    // A signed request is one delivery here too: the signature does not cover method or path, so a captured
    // signed read could otherwise delete or re-key the sender's endpoints for five minutes.
    remembersWebhooks: true,
    handle: (req, deps) => handleEvents(req, deps),
  });

export const handler = makeHandler(awsDeps({ table: dynamoTable })).use(logInvocation());
