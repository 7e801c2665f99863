import type { APIGatewayProxyEvent } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { makeConsoleHandler, type ConsoleDeps } from '../../../shared/console/handler.js';
import { sessionSecret } from '../../../shared/console/session.js';
import { parseOperatorKeys } from '../../../shared/http/operators.js';
import type { AppDeps } from '../../../shared/deps.js';
import { EMPTY_LIMITER } from '../../../shared/core/pacing.js';

/**
 * In AWS the console is reached at https://<api>.execute-api.<region>.amazonaws.com/<stage>/console: API
 * Gateway hands the function the path without the stage (`/console/...`), and the browser sees it with it.
 * A cookie for Path=/console and pages linking /console/assets/... would never reach the function there.
 */

const KEY = 'olga-operator-key-0123456789';
const quiet = { debug() {}, info() {}, warn() {}, error() {}, child() { return quiet; } };

function deps(): ConsoleDeps {
  return {
    app: { clock: Date.now, log: quiet, modules: new Map() } as unknown as AppDeps,
    operators: parseOperatorKeys(`olga=${KEY}`),
    secret: sessionSecret('stage-path-test-log-hash-key'),
    secure: true,
    audit: {} as ConsoleDeps['audit'],
    browse: async () => ({ records: [], requests: { query: 0, batchGet: 0 } }),
    fence: () => ({ id: 'test', n: 0 }),
    limiter: { read: async () => ({ ...EMPTY_LIMITER, lanes: {} }) },
  };
}

/** An API Gateway REST proxy event as the default execute-api URL delivers it: the stage in requestContext.path only. */
function event(method: string, path: string, stage: string | undefined, body?: unknown): APIGatewayProxyEvent {
  return {
    resource: path === '/console' ? '/console' : '/console/{proxy+}',
    path,
    httpMethod: method,
    headers: { host: 'abc123.execute-api.eu-north-1.amazonaws.com', ...(body ? { 'content-type': 'application/json' } : {}) },
    multiValueHeaders: {},
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: path === '/console' ? null : { proxy: path.slice('/console/'.length) },
    stageVariables: null,
    body: body ? JSON.stringify(body) : null,
    isBase64Encoded: false,
    requestContext: { requestId: 'r1', path: stage ? `/${stage}${path}` : path, httpMethod: method, stage: stage ?? '$default' },
  } as unknown as APIGatewayProxyEvent;
}

describe('the console under an API Gateway stage path', () => {
  const handler = makeConsoleHandler(async () => deps());

  it('scopes the session cookie to the stage\'s /console path', async () => {
    const res = await handler(event('POST', '/console/api/login', 'prod', { key: KEY }));
    expect(res.statusCode).toBe(200);
    const cookie = String(res.headers?.['set-cookie']);
    expect(cookie).toMatch(/(^|; )Path=\/prod\/console(;|$)/);
    expect(cookie).toMatch(/; Secure(;|$)/);
  });

  it('links its files under the stage path, and its script finds the API from where it was loaded', async () => {
    const page = await handler(event('GET', '/console', 'prod'));
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('src="/prod/console/assets/app.js"');
    expect(page.body).toContain('href="/prod/console/assets/app.css"');
    expect(page.body).not.toMatch(/"\/console\//);
    // The same page without a stage (npm start, or a custom domain mapped at the root) links /console/... as before.
    const local = await handler(event('GET', '/console', undefined));
    expect(local.body).toContain('src="/console/assets/app.js"');
    expect(local.headers?.etag).not.toBe(page.headers?.etag);
    const login = await handler(event('POST', '/console/api/login', undefined, { key: KEY }));
    expect(String(login.multiValueHeaders?.['set-cookie'] ?? login.headers?.['set-cookie'])).toMatch(/Path=\/console;/);
  });
});
