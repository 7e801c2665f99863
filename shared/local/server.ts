import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import type { AppDeps } from '../deps.js';
import { findOperator, type Operator } from '../http/operators.js';
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

/** What Node's HTTP parser refuses before any handler runs, as the problem this gateway answers with. */
export function clientErrorProblem(code: string | undefined): ProblemError {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return new ProblemError(431, 'request-header-fields-too-large', 'Request header fields too large', 'The request headers are over 16 KiB (Node\'s limit; API Gateway\'s is 10 KiB). Nothing was recorded or sent.');
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return new ProblemError(413, 'payload-too-large', 'Request body too large', 'The chunk extensions of the body are too large. Nothing was recorded or sent.');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new ProblemError(408, 'request-timeout', 'Request timeout', 'The request did not arrive completely in time. Nothing was recorded or sent.');
    default:
      return new ProblemError(400, 'bad-request', 'Bad request', `The request is not valid HTTP/1.1${code ? ` (${code})` : ''}: check the request line (a path must be ASCII, anything else percent-encoded as UTF-8) and the headers. Nothing was recorded or sent.`);
  }
}

/** Whether the request Node's parser refused was a HEAD (its raw bytes, which Node's parse errors carry). */
function isHead(err: NodeJS.ErrnoException): boolean {
  const raw = (err as NodeJS.ErrnoException & { rawPacket?: unknown }).rawPacket;
  return Buffer.isBuffer(raw) && raw.subarray(0, 5).toString('latin1') === 'HEAD ';
}

/**
 * Answers what Node's parser refused with a problem document instead of Node's bare status line
 * (issue 13: a 431 or 400 with an empty body). Like Node's own handler, it writes only when no
 * response of this connection has started, so a kept-alive peer never sees two responses interleaved.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  // `_httpMessage` is the in-flight ServerResponse: what Node's own socketOnError checks before writing.
  const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
  if (err.code !== 'ECONNRESET' && socket.writable && !inFlight?.headersSent) {
    const problem = problemResponse(clientErrorProblem(err.code));
    const body = Buffer.from(problem.body, 'utf8');
    socket.write(
      `HTTP/1.1 ${problem.statusCode} ${STATUS_CODES[problem.statusCode] ?? ''}\r\ncontent-type: application/problem+json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n`,
    );
    // A response to HEAD has no body (RFC 9110, 9.3.2): a client reads none, and would take one for the
    // next response (issue 20 item 14). The parser failed, so the method is read from the raw bytes.
    if (!isHead(err)) socket.write(body);
  }
  socket.destroy();
}

/**
 * A loopback listener like the sandboxes' (127.0.0.1 only, open sockets destroyed on close), plus the
 * clientError answer above: the gateway is the one server whose own 4xx callers see.
 */
function listenGateway(handler: (req: IncomingMessage, res: ServerResponse) => void, port: number): Promise<RunningServer> {
  return listenLoopback(handler, port, (server) => server.on('clientError', answerClientError));
}

/** The admin hooks' body: a JSON object, or a 400 saying what is wrong with it. */
function adminBody(text: string | undefined): Record<string, unknown> {
  if (text === undefined) throw new ProblemError(413, 'payload-too-large', 'Request body too large', 'The body exceeds the gateway limit.');
  if (text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ProblemError(400, 'malformed-json', 'Malformed JSON', `The body is not valid JSON: ${(err as Error).message}.`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new ProblemError(400, 'malformed-json', 'Malformed JSON', 'The body must be a JSON object.');
  return value as Record<string, unknown>;
}

/**
 * Local-only operator hooks (`/__local/...`) for the `paybridge` command: not part of the AWS API. They
 * are called only for an operator (OPERATOR_KEYS); the hook itself decides what a viewer may do.
 */
export type LocalAdmin = (path: string, body: unknown, operator: Operator) => Promise<unknown | undefined>;

/** The loopback names a browser or a tool on this machine uses: anything else reached us through a name we do not own. */
const LOOPBACK_HOSTS = ['127.0.0.1', 'localhost', '[::1]'];

/**
 * The hooks hand out secrets (invoke-env) and queue messages: a page on any site could reach them
 * through DNS rebinding (its own name resolving to 127.0.0.1), and the browser would send that name as
 * Host. A Host that is not a loopback name with this very port is refused before any key is read.
 */
export function loopbackHost(host: string | undefined, port: number): boolean {
  if (!host) return false;
  const h = host.trim().toLowerCase();
  return LOOPBACK_HOSTS.some((name) => h === `${name}:${port}`);
}

/** The operator key a hook request presents: `authorization: Bearer <key>`. */
function presentedOperatorKey(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  const m = value ? /^Bearer\s+(\S+)\s*$/i.exec(value) : null;
  return m?.[1];
}

/** The local SQS endpoint (shared/local/sqs-endpoint.ts): one JSON-protocol call, its status and body. */
export type LocalSqs = (target: string | undefined, input: Record<string, unknown>) => Promise<{ status: number; body: Record<string, unknown> }>;

/**
 * The local API Gateway: turns HTTP requests into REST (payload v1) proxy events and calls the same
 * handler factories Lambda runs, with the local parts injected. Path parameters go to the handlers
 * as raw, still percent-encoded segments, as API Gateway REST puts them in `pathParameters`
 * (serverless/serverless#5037; middleapi/standard-server#93): shared/http/route.ts decodes them once.
 */
export async function startLocalApi(
  getDeps: () => Promise<AppDeps>,
  port: number,
  admin?: { operators: Map<string, Operator>; call: LocalAdmin },
  sqs?: { path: string; call: LocalSqs },
  /** The operator console (shared/console/handler.ts), served under /console. */
  consolePage?: (event: APIGatewayProxyEvent) => Promise<APIGatewayProxyResult>,
  /** Each route function's timeout (lambdaContext's default: 29 s). */
  functionTimeoutMs?: number,
): Promise<RunningServer> {
  const routes = HTTP_ROUTES.map((r) => ({ ...r, ...compile(r.path), handler: r.make(getDeps) }));
  return listenGateway((req, res) => {
    void (async () => {
      let url: URL;
      try {
        url = new URL(req.url ?? '/', 'http://localhost');
      } catch {
        return write(res, problemResponse(new ProblemError(400, 'bad-request', 'Bad request', 'The request target is not a valid path.')));
      }
      const requestId = randomUUID();
      if (url.pathname.startsWith('/__local/') && !loopbackHost(req.headers.host, req.socket.localPort ?? 0)) {
        return write(res, problemResponse(new ProblemError(403, 'host-not-allowed', 'Host not allowed', `The local hooks answer only requests addressed to 127.0.0.1, localhost or [::1] with port ${req.socket.localPort}.`), url.pathname));
      }
      if (sqs && url.pathname.replace(/\/$/, '') === sqs.path && req.method === 'POST') {
        // SigV4-signed by the SDK with the dummy credentials invoke-local runs with: not checked. The
        // message itself must carry the stack's message authentication (shared/queue/port.ts), and
        // even then it only wakes a record (see sqsCall).
        const text = await readLimited(req);
        let input: Record<string, unknown> = {};
        try {
          input = JSON.parse(text || '{}') as Record<string, unknown>;
        } catch {
          input = {};
        }
        const target = req.headers['x-amz-target'];
        const answer = await sqs.call(Array.isArray(target) ? target[0] : target, input);
        res.writeHead(answer.status, { 'content-type': 'application/x-amz-json-1.0' });
        return void res.end(JSON.stringify(answer.body));
      }
      if (admin && url.pathname.startsWith('/__local/')) {
        const presented = presentedOperatorKey(req.headers.authorization);
        const operator = presented === undefined ? undefined : findOperator(admin.operators, presented);
        if (!operator) {
          // An API key (a caller's) never opens a hook: callers must not read the stack's secrets or queue messages.
          return write(
            res,
            problemResponse(
              new ProblemError(401, 'unauthorized', 'Operator key required', 'The local hooks need an operator key (OPERATOR_KEYS; npm start keeps one in .data/operator-key) as `authorization: Bearer <key>`. An x-api-key is not accepted here.', undefined, {}, { 'www-authenticate': 'Bearer' }),
              url.pathname,
            ),
          );
        }
        try {
          const answer = await admin.call(url.pathname.slice('/__local/'.length), adminBody(await readLimited(req)), operator);
          if (answer === undefined) return write(res, problemResponse(new ProblemError(404, 'not-found', 'Not found', `No local hook ${url.pathname}.`), url.pathname));
          return write(res, { statusCode: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify(answer) });
        } catch (err) {
          if (err instanceof ProblemError) return write(res, problemResponse(err, url.pathname));
          throw err;
        }
      }
      if (consolePage && (url.pathname === '/console' || url.pathname.startsWith('/console/'))) {
        const body = await readLimited(req);
        if (body === undefined) return write(res, problemResponse(new ProblemError(413, 'payload-too-large', 'Request body too large', 'The body exceeds the gateway limit.'), url.pathname));
        return write(res, await consolePage(gatewayEvent(req, url, body, requestId, '/console/{proxy+}', null)));
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
      const event = gatewayEvent(req, url, body, requestId, route.path, route.names.length ? pathParameters : null);
      write(res, await route.handler(event, lambdaContext(route.function, requestId, functionTimeoutMs)));
    })().catch((err: Error) => {
      if (res.headersSent) return;
      // The function ran out of its time (middy's early answer before Lambda's timeout): API Gateway answers 504.
      if (err.name === 'TimeoutError') write(res, problemResponse(new ProblemError(504, 'gateway-timeout', 'Gateway timeout', 'The function did not answer within its timeout. If the request carried a payment, its status route tells whether it was recorded.')));
      else write(res, problemResponse(new ProblemError(500, 'internal-error', 'Internal error', err.message)));
    });
  }, port);
}

/** The API Gateway (REST, payload v1) event for a request the local gateway received. */
function gatewayEvent(req: IncomingMessage, url: URL, body: string, requestId: string, resource: string, pathParameters: Record<string, string> | null): APIGatewayProxyEvent {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(',') : v;
  return {
    resource,
    path: url.pathname,
    httpMethod: req.method ?? 'GET',
    headers,
    multiValueHeaders: {},
    queryStringParameters: url.search ? Object.fromEntries(url.searchParams) : null,
    multiValueQueryStringParameters: null,
    pathParameters,
    stageVariables: null,
    body: body === '' ? null : body,
    isBase64Encoded: false,
    requestContext: { requestId, path: url.pathname, httpMethod: req.method, stage: 'local' },
  } as unknown as APIGatewayProxyEvent;
}
