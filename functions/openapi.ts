import { awsDeps, type AppDeps } from '../shared/deps.js';
import { buildOpenApi } from '../shared/http/openapi.js';
import { httpRoute } from '../shared/http/route.js';
import { logInvocation } from '../shared/log.js';

let document: unknown;

/** GET /v1/openapi.json: the OpenAPI 3.1 document generated from the zod schemas. */
export const makeHandler = (getDeps: () => Promise<AppDeps>) =>
  httpRoute({
    getDeps,
    takesBody: false,
    async handle() {
      document ??= buildOpenApi();
      return { status: 200, body: document, headers: { 'cache-control': 'public, max-age=300' } };
    },
  });

// Authentication only: its role grants no table and no queue, so it carries neither client.
export const handler = makeHandler(awsDeps()).use(logInvocation());
