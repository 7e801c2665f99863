import middy from '@middy/core';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import type { AppDeps } from '../deps.js';
import { authenticate, type GatewayIdentity, type Principal } from './auth.js';
import { ProblemError, problemResponse, validationProblem } from './problem.js';
import { admitDelivery, settleDelivery, type Delivery } from './webhooks.js';

/** Larger bodies are refused with 413 before they are parsed (issue 2). */
export const MAX_BODY_BYTES = 256 * 1024;

export interface HttpRequest {
  method: string;
  path: string;
  pathParameters: Record<string, string>;
  /** The query string's parameters (the last of a repeated name). Absent where a caller of the handler gives none. */
  query?: Record<string, string>;
  /** Lower-cased names. */
  headers: Record<string, string | undefined>;
  rawBody: string;
  /** Parsed JSON for routes that take a body. */
  body: unknown;
  requestId: string;
  principal: Principal;
  /** Epoch ms on the deps' clock (the engine compares it with that clock) by which this invocation must have answered (Lambda's remaining time, less a margin). */
  deadline: number;
}

export interface HttpReply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

function lowerHeaders(headers: APIGatewayProxyEvent['headers'] | null | undefined): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(headers ?? {})) out[k.toLowerCase()] = v ?? undefined;
  return out;
}

/**
 * API Gateway REST (payload v1) puts path parameters in the event still percent-encoded, as the
 * client sent them (serverless/serverless#5037: `/posts/%40` arrives as `%40`; middleapi/standard-server#93,
 * from live captures: REST APIs keep the path's encoding, only HTTP APIs decode it). So they are
 * decoded here, exactly once: a key holding `%25` or `/` round-trips. A value that is not valid
 * percent-encoding (`%zz`, or bytes that are not UTF-8) cannot name anything we stored: a 400 naming
 * the parameter, where falling back to the raw text would silently address another key.
 */
function decodeParam(name: string, value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    throw validationProblem([{ pointer: `path:${name}`, detail: 'is not valid percent-encoding of UTF-8 text: encode the value once with encodeURIComponent' }], 'path');
  }
}

/** What the API Gateway authorizer put on the request (functions/authorize.ts); nothing locally. */
function gatewayIdentity(event: APIGatewayProxyEvent): GatewayIdentity | undefined {
  const context = event.requestContext?.authorizer as Record<string, unknown> | null | undefined;
  if (!context) return undefined;
  const text = (v: unknown) => (typeof v === 'string' ? v : undefined);
  return { caller: text(context.caller), method: text(context.method) };
}

const JSON_TYPE = /^application\/([\w.+-]+\+)?json\s*(;.*)?$/i;

function readBody(event: APIGatewayProxyEvent): string {
  const raw = event.body ?? '';
  const text = event.isBase64Encoded ? Buffer.from(raw, 'base64').toString('utf8') : raw;
  const size = Buffer.byteLength(text, 'utf8');
  if (size > MAX_BODY_BYTES) {
    throw new ProblemError(413, 'payload-too-large', 'Request body too large', `The body is ${size} bytes; the limit is ${MAX_BODY_BYTES} bytes (256 KiB). Nothing was recorded.`);
  }
  return text;
}

function parseJson(text: string, headers: Record<string, string | undefined>): unknown {
  const type = headers['content-type'];
  if (!type || !JSON_TYPE.test(type)) {
    throw new ProblemError(415, 'unsupported-media-type', 'Unsupported media type', `Send the body as application/json${type ? `, not ${type}` : ' (the content-type header is missing)'}. Nothing was recorded.`);
  }
  if (text.trim() === '') throw new ProblemError(400, 'malformed-json', 'Malformed JSON', 'The request body is empty; a JSON object is required. Nothing was recorded.');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ProblemError(400, 'malformed-json', 'Malformed JSON', `The body is not valid JSON: ${(err as Error).message}. Nothing was recorded.`);
  }
}

function toResult(reply: HttpReply): APIGatewayProxyResult {
  const headers: Record<string, string> = { ...reply.headers };
  if (reply.body === undefined) return { statusCode: reply.status, headers, body: '' };
  headers['content-type'] ??= 'application/json';
  return { statusCode: reply.status, headers, body: JSON.stringify(reply.body) };
}

/**
 * One API Gateway (REST, payload v1) route: size limit, authentication on the raw body, content
 * type, JSON, then the route's own work. A ProblemError becomes `application/problem+json`; any
 * other error a 500 whose body says nothing internal (compare middy's http-error-handler).
 *
 * `remembersWebhooks`: the route admits each signed webhook delivery once (shared/http/webhooks.ts) and
 * keeps its answer. Every route that records or sends does, and so do the read routes (issue 20 item 8):
 * the signature does not cover the path, so an unremembered signed GET could be replayed for five
 * minutes to read any other record of its sender, and a captured POST sent as a GET with its body.
 * Their roles may write the webhook memory's items only (shared/aws/stack.ts).
 */
export function httpRoute(opts: {
  getDeps: () => Promise<AppDeps>;
  takesBody: boolean;
  remembersWebhooks?: boolean;
  handle: (req: HttpRequest, deps: AppDeps) => Promise<HttpReply>;
}) {
  return middy<APIGatewayProxyEvent, APIGatewayProxyResult, Error, Context>().handler(async (event, context) => {
    const requestId = event.requestContext?.requestId ?? context.awsRequestId;
    const instance = event.path;
    const started = Date.now();
    let deps: AppDeps | undefined;
    // One line per request, correlated by requestId; the route template, never the path (it can hold a personal id).
    const logged = (result: APIGatewayProxyResult, principal?: Principal): APIGatewayProxyResult => {
      deps?.log.info('request', { requestId, route: `${event.httpMethod} ${event.resource}`, status: result.statusCode, ms: Date.now() - started, ...(principal ? { caller: `${principal.method}:${principal.id}` } : {}) });
      return result;
    };
    let principal: Principal | undefined;
    let delivery: Delivery | undefined;
    let result: APIGatewayProxyResult;
    try {
      deps = await opts.getDeps();
      const headers = lowerHeaders(event.headers);
      const rawBody = readBody(event);
      principal = authenticate(headers, rawBody, deps.auth, gatewayIdentity(event));
      const pathParameters: Record<string, string> = {};
      for (const [k, v] of Object.entries(event.pathParameters ?? {})) if (v !== undefined) pathParameters[k] = decodeParam(k, v);
      const query = queryOf(event);
      if (opts.remembersWebhooks && principal.method === 'webhook') {
        const admission = await admitDelivery(deps, {
          method: event.httpMethod,
          resource: event.resource,
          pathParameters,
          query,
          headers,
          rawBody,
          sender: principal.caller,
          owner: requestId,
          remainingMs: context.getRemainingTimeInMillis(),
        });
        if (admission.kind === 'answered') return logged(admission.result, principal);
        delivery = admission.delivery;
      }
      const body = opts.takesBody ? parseJson(rawBody, headers) : undefined;
      const reply = await opts.handle(
        { method: event.httpMethod, path: event.path, pathParameters, query, headers, rawBody, body, requestId, principal, deadline: deps.clock() + context.getRemainingTimeInMillis() - 1_000 },
        deps,
      );
      result = toResult(reply);
    } catch (err) {
      if (err instanceof ProblemError) result = problemResponse(err, instance);
      else {
        // The resource template, not the path: a path can hold a personal id (the status route's key).
        (deps?.log ?? console).error('unhandled error in route', { error: err, requestId, route: event.resource });
        result = problemResponse(
          new ProblemError(500, 'internal-error', 'Internal error', `The request could not be completed. Reference: ${requestId}. If it carried a payment, its status route tells whether it was recorded.`),
          instance,
        );
      }
    }
    if (delivery && deps) await settleDelivery(deps, delivery, result);
    return logged(result, principal);
  });
}

/** The query string's parameters as API Gateway passes them (values it gives as null left out). */
function queryOf(event: APIGatewayProxyEvent): Record<string, string> {
  const query: Record<string, string> = {};
  for (const [k, v] of Object.entries(event.queryStringParameters ?? {})) if (typeof v === 'string') query[k] = v;
  return query;
}
