import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import type { AppDeps } from '../deps.js';
import { ProblemError, problemResponse } from '../http/problem.js';
import { listenLoopback, type RunningServer } from '../systems/sandbox.js';
import { HTTP_ROUTES } from './routes.js';

/** API Gateway's own payload limit for REST APIs; the handlers refuse anything over 256 KiB themselves. */
const GATEWAY_LIMIT_BYTES = 10 * 1024 * 1024;

function compile(path: string): { regex: RegExp; names: string[] } {
  const names: string[] = [];
  const pattern = path.replace(/\{(\w+)\}/g, (_m, name: string) => {
    names.push(name);
    return '([^/]+)';
  });
  return { regex: new RegExp(`^${pattern}$`), names };
}

/** A Lambda context whose remaining time counts down from `timeoutMs` (29 s: API Gateway's limit). */
export function lambdaContext(functionName: string, requestId: string, timeoutMs = 29_000): Context {
  const deadline = Date.now() + timeoutMs;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:${functionName}`,
    memoryLimitInMB: '512',
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

async function readLimited(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > GATEWAY_LIMIT_BYTES) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function write(res: ServerResponse, result: APIGatewayProxyResult): void {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(result.headers ?? {})) headers[k] = String(v);
  res.writeHead(result.statusCode, headers);
  res.end(result.body);
}

/**
 * The local API Gateway: turns HTTP requests into REST (payload v1) proxy events and calls the same
 * handler factories Lambda runs, with the local parts injected.
 */
/** Local-only operator hooks (`/__local/...`) for the `paybridge` command: not part of the AWS API. */
export type LocalAdmin = (path: string, body: unknown) => Promise<unknown | undefined>;

export async function startLocalApi(getDeps: () => Promise<AppDeps>, port: number, admin?: LocalAdmin): Promise<RunningServer> {
  const routes = HTTP_ROUTES.map((r) => ({ ...r, ...compile(r.path), handler: r.make(getDeps) }));
  return listenLoopback((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const requestId = randomUUID();
      if (admin && url.pathname.startsWith('/__local/')) {
        const deps = await getDeps();
        const key = String(req.headers['x-api-key'] ?? '');
        if (!deps.auth.apiKeys.includes(key)) return write(res, problemResponse(new ProblemError(401, 'unauthorized', 'Authentication required', 'Send the dev x-api-key.')));
        const text = await readLimited(req);
        const answer = await admin(url.pathname.slice('/__local/'.length), text ? JSON.parse(text) : {});
        if (answer === undefined) return write(res, problemResponse(new ProblemError(404, 'not-found', 'Not found', `No local hook ${url.pathname}.`)));
        return write(res, { statusCode: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify(answer) });
      }
      const candidates = routes.filter((r) => r.regex.test(url.pathname));
      const route = candidates.find((r) => r.method === req.method);
      if (!route) {
        const problem = candidates.length
          ? new ProblemError(405, 'method-not-allowed', 'Method not allowed', `${req.method} is not allowed on ${url.pathname}; use ${candidates.map((c) => c.method).join(', ')}.`, undefined, {}, { allow: candidates.map((c) => c.method).join(', ') })
          : new ProblemError(404, 'not-found', 'Not found', `There is no route ${req.method} ${url.pathname}. Routes: ${routes.map((r) => `${r.method} ${r.path}`).join(', ')}.`);
        return write(res, problemResponse(problem, url.pathname));
      }
      const body = await readLimited(req);
      if (body === undefined) return write(res, problemResponse(new ProblemError(413, 'payload-too-large', 'Request body too large', 'The body exceeds the gateway limit.'), url.pathname));
      const match = route.regex.exec(url.pathname) as RegExpExecArray;
      const pathParameters = Object.fromEntries(route.names.map((n, i) => [n, match[i + 1] as string]));
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(',') : v;
      const event = {
        resource: route.path,
        path: url.pathname,
        httpMethod: req.method ?? 'GET',
        headers,
        multiValueHeaders: {},
        queryStringParameters: url.search ? Object.fromEntries(url.searchParams) : null,
        multiValueQueryStringParameters: null,
        pathParameters: route.names.length ? pathParameters : null,
        stageVariables: null,
        body: body === '' ? null : body,
        isBase64Encoded: false,
        requestContext: { requestId, path: url.pathname, httpMethod: req.method, stage: 'local' },
      } as unknown as APIGatewayProxyEvent;
      write(res, await route.handler(event, lambdaContext(route.function, requestId)));
    })().catch((err: Error) => {
      if (!res.headersSent) write(res, problemResponse(new ProblemError(500, 'internal-error', 'Internal error', err.message)));
    });
  }, port);
}
