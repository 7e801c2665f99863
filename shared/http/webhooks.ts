import { createHmac } from 'node:crypto';
import type { APIGatewayProxyResult } from 'aws-lambda';
import type { AppDeps } from '../deps.js';
import { hashId, logHashKey } from '../log.js';
import type { DeliveryBinding, StoredAnswer } from '../store/port.js';
import { ProblemError } from './problem.js';

/**
 * A signed webhook delivery is one delivery (issue 12). The Standard Webhooks signature covers the
 * webhook-id, the timestamp and the body only: the route, its path and the headers that choose the
 * target (`ClubId`, `Idempotency-Key`, `patient`) are not signed, so within the 5-minute tolerance
 * anyone who saw one delivery could send it again to another club or route. Each id is therefore
 * remembered with all of them: the same delivery again gets the first answer, the same id with any
 * of them changed gets 409 and reaches nothing.
 */

/** How long an id is remembered: far beyond the 5-minute tolerance, after which a captured delivery no longer verifies. */
export const WEBHOOK_MEMORY_SECONDS = 60 * 60;

/** Headroom over the invocation's remaining time before an unanswered delivery counts as abandoned (clocks of containers differ a little). */
const LEASE_SLACK_MS = 5_000;

/** The headers that choose the target (DESIGN.md, "Public interface"), lower-cased as the routes read them. */
const TARGET_HEADERS = [
  ['clubId', 'clubid', 'header ClubId'],
  ['idempotencyKey', 'idempotency-key', 'header Idempotency-Key'],
  ['patient', 'patient', 'header patient'],
] as const;

/** Keyed, like the log hashes: a patient id or a short body cannot be recovered by trying candidates. */
function keyed(label: string, value: string): string {
  return createHmac('sha256', logHashKey()).update(`${label}\u0000${value}`).digest('hex');
}

export interface DeliveryRequest {
  method: string;
  /** The API Gateway resource template, e.g. `/v1/kontantanalys/{resource}/{externalId}`. */
  resource: string;
  /** Decoded path parameters. */
  pathParameters: Record<string, string>;
  /** Lower-cased names. */
  headers: Record<string, string | undefined>;
  rawBody: string;
  /** The query string's parameters as the route reads them (HttpRequest.query). */
  query?: Record<string, string>;
}

/**
 * What a delivery is bound to. The path parameters are bound too: the template alone does not tell
 * one Kontantanalys object from another, so a captured PUT could otherwise be sent to another externalId.
 * So is the query string as the route reads it (`GET /v1/events?limit=N`): another query is another read,
 * refused rather than answered with the first read's answer.
 */
export function deliveryBinding(req: DeliveryRequest): DeliveryBinding {
  const header = (name: string): string | null => {
    const value = req.headers[name];
    return value === undefined ? null : keyed(name, value);
  };
  const byName = ([a]: [string, string], [b]: [string, string]) => (a < b ? -1 : a > b ? 1 : 0);
  const path = Object.entries(req.pathParameters).sort(byName);
  const query = Object.entries(req.query ?? {}).sort(byName);
  return {
    route: `${req.method} ${req.resource}`,
    path: keyed('path', JSON.stringify(path)),
    clubId: header('clubid'),
    idempotencyKey: header('idempotency-key'),
    patient: header('patient'),
    body: keyed('body', req.rawBody),
    ...(query.length > 0 ? { query: keyed('query', JSON.stringify(query)) } : {}),
  };
}

/** What differs between the delivery first seen and this one, in the caller's terms (never a value). */
export function differences(first: DeliveryBinding, now: DeliveryBinding): string[] {
  const out: string[] = [];
  if (first.route !== now.route) out.push(`the route (first ${first.route})`);
  if (first.path !== now.path) out.push('the path');
  for (const [field, , label] of TARGET_HEADERS) if (first[field] !== now[field]) out.push(label);
  if (first.body !== now.body) out.push('the body');
  if (first.query !== now.query) out.push('the query string');
  return out;
}

/** A delivery this request holds: it stores the answer when the route has given it. */
export interface Delivery {
  sender: string;
  id: string;
  owner: string;
}

export type Admission = { kind: 'new'; delivery: Delivery } | { kind: 'answered'; result: APIGatewayProxyResult };

/**
 * Admits a signed delivery once. Returns the first answer for the same delivery again; throws 409
 * `webhook-replayed` for the same id with another route, path, target header or body, and 409
 * `webhook-in-progress` (with Retry-After) while the first is still being handled.
 */
export async function admitDelivery(deps: AppDeps, req: DeliveryRequest & { sender: string; owner: string; remainingMs: number }): Promise<Admission> {
  const id = req.headers['webhook-id'] as string;
  const binding = deliveryBinding(req);
  const now = deps.clock();
  const leaseUntil = now + Math.max(0, req.remainingMs) + LEASE_SLACK_MS;
  const seen = await deps.webhooks.claim(
    { sender: req.sender, id, binding, owner: req.owner, leaseUntil, expiresAt: Math.floor(now / 1000) + WEBHOOK_MEMORY_SECONDS },
    now,
  );
  if (seen.claimed) return { kind: 'new', delivery: { sender: req.sender, id, owner: req.owner } };
  const log = deps.log.child({ requestId: req.owner, sender: req.sender, webhook: hashId(id) });
  const changed = differences(seen.binding, binding);
  if (changed.length > 0) {
    log.warn('webhook-id seen before with another target: refused', { changed: changed.length });
    throw new ProblemError(
      409,
      'webhook-replayed',
      'This webhook-id was used for another delivery',
      `The webhook-id "${id}" was received at ${seen.receivedAt} with a different ${changed.join(', ')}. A webhook-id is one delivery: nothing was recorded or sent. Send a new delivery under a new webhook-id.`,
    );
  }
  if (seen.answer) {
    log.info('webhook delivery seen before: its first answer is given again', { status: seen.answer.status });
    return { kind: 'answered', result: { statusCode: seen.answer.status, headers: { ...seen.answer.headers, 'idempotent-replayed': 'true' }, body: seen.answer.body } };
  }
  const wait = Math.min(30, Math.max(1, Math.ceil((seen.leaseUntil - now) / 1000)));
  throw new ProblemError(
    409,
    'webhook-in-progress',
    'The first delivery of this webhook-id is still being handled',
    `The webhook-id "${id}" arrived at ${seen.receivedAt} and its answer is not ready yet. Nothing was recorded or sent by this request: send it again after ${wait} seconds to get that answer.`,
    undefined,
    {},
    { 'retry-after': String(wait) },
  );
}

/**
 * Whether an answer is the delivery's answer for good. A 5xx, 408, 409, 425 or 429 says "not now":
 * kept, it would answer every retry the same for an hour. Those are not kept; the next identical
 * delivery is handled afresh, which the payment record makes safe (a duplicate posts nothing). Nor is
 * a 403 (outside the sender's scope, issue 20 item 5): it recorded nothing, and once the operator
 * widens the scope the terminal's next retry should go through.
 */
export function isFinal(status: number): boolean {
  return status < 500 && ![403, 408, 409, 425, 429].includes(status);
}

/** After the route answered: keeps a final answer with the id, or lets the next identical delivery through. Never fails the reply. */
export async function settleDelivery(deps: AppDeps, delivery: Delivery, result: APIGatewayProxyResult): Promise<void> {
  try {
    if (isFinal(result.statusCode)) {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(result.headers ?? {})) headers[k] = String(v);
      const answer: StoredAnswer = { status: result.statusCode, headers, body: result.body };
      await deps.webhooks.answer(delivery.sender, delivery.id, delivery.owner, answer);
    } else {
      await deps.webhooks.release(delivery.sender, delivery.id, delivery.owner);
    }
  } catch (err) {
    // The reply stands; an identical delivery is handled afresh once this one's lease has passed.
    deps.log.error('the answer to a webhook delivery could not be remembered', { error: err, requestId: delivery.owner, sender: delivery.sender });
  }
}
