import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { AppDeps } from '../deps.js';
import type { HttpReply, HttpRequest } from '../http/route.js';
import { fieldErrors, ProblemError, validationProblem } from '../http/problem.js';
import { newSecret, secretHint, signingSecrets, DEFAULT_DELIVERY } from './deliver.js';
import { eventId, type PaymentEvent } from './model.js';
import { endpointBody, patchBody, recoverBody } from './schema.js';
import { fanOut } from './relay.js';
import { eventsRuntime } from './runtime.js';
import { resolvedProblems, urlProblems } from './ssrf.js';
import type { Delivery, Endpoint, EventStore } from './store.js';

/**
 * The caller's side of events out (issue 21): `/v1/event-endpoints` and `/v1/events`. Every route is
 * scoped to the authenticated caller: another caller's endpoint or event answers 404, as one that
 * does not exist, and every write of an endpoint has its caller as a condition.
 */

function parse<T>(schema: z.ZodType<T>, body: unknown, what: string): T {
  const r = schema.safeParse(body ?? {});
  if (!r.success) throw validationProblem(fieldErrors(r.error), what);
  return r.data;
}

/** `GET /v1/events?limit=N`: the newest N events, 1 to 1,000 (100 when not given); anything else is a 400 naming it. */
function eventsLimit(given: string | undefined): number {
  if (given === undefined) return 100;
  const n = /^\d{1,4}$/.test(given) ? Number(given) : Number.NaN;
  if (!(n >= 1 && n <= 1000)) throw validationProblem([{ pointer: 'query:limit', detail: 'must be a whole number from 1 to 1000' }], 'query');
  return n;
}

function bodyOf(req: HttpRequest): unknown {
  if (req.rawBody.trim() === '') return {};
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/([\w.+-]+\+)?json\s*(;.*)?$/i.test(type)) {
    throw new ProblemError(415, 'unsupported-media-type', 'Unsupported media type', 'Send the body as application/json.');
  }
  try {
    return JSON.parse(req.rawBody);
  } catch (err) {
    throw new ProblemError(400, 'malformed-json', 'Malformed JSON', `The body is not valid JSON: ${(err as Error).message}.`);
  }
}

/** What a caller sees of an endpoint: never a secret, only a hint of each that signs. */
export function endpointView(e: Endpoint, now: number) {
  return {
    id: e.id,
    url: e.url,
    eventTypes: e.eventTypes,
    ...(e.description ? { description: e.description } : {}),
    enabled: !e.disabled,
    ...(e.disabled ? { disabled: e.disabled } : {}),
    ...(e.failingSince !== undefined ? { failingSince: new Date(e.failingSince).toISOString() } : {}),
    ...(e.pausedUntil !== undefined && e.pausedUntil > now ? { pausedUntil: new Date(e.pausedUntil).toISOString() } : {}),
    signingSecrets: e.secrets.filter((s) => s.until === undefined || s.until > now).map((s) => ({ hint: secretHint(s.secret), ...(s.until ? { until: new Date(s.until).toISOString() } : {}) })),
    createdAt: e.createdAt,
    updatedAt: e.updatedAt,
  };
}

export function deliveryView(d: Delivery) {
  return {
    endpointId: d.endpointId,
    eventId: d.eventId,
    type: d.event.type,
    status: d.status,
    tries: d.tries,
    ...(d.status === 'pending' ? { nextAttemptAt: new Date(d.nextAttemptAt).toISOString() } : {}),
    attempts: d.attempts,
  };
}

async function urlChecked(url: string, policy: { allowLoopback: boolean }): Promise<void> {
  const problems = urlProblems(url, policy);
  if (problems.length === 0) problems.push(...(await resolvedProblems(url, policy)));
  if (problems.length > 0) throw validationProblem(problems.map((detail) => ({ pointer: '#/url', detail })), 'endpoint');
}

async function owned(store: EventStore, id: string, caller: string): Promise<Endpoint> {
  const e = /^ep_[A-Za-z0-9_-]{1,40}$/.test(id) ? await store.getEndpoint(id) : undefined;
  if (!e || e.caller !== caller) throw new ProblemError(404, 'endpoint-not-found', 'Endpoint not found', `No event endpoint ${id.slice(0, 60)} is registered.`);
  return e;
}

/**
 * A caller's change of its endpoint: written only over the version it was made from (EventStore.putEndpoint),
 * and made again from a fresh read when another write came between (a rotation, the deliverer's bookkeeping
 * or disable), a bounded number of times. A PATCH from a stale read would otherwise drop a rotated secret
 * the caller was just shown, or enable an endpoint the deliverer had just disabled.
 */
async function changeEndpoint(store: EventStore, first: Endpoint, caller: string, change: (read: Endpoint) => Endpoint): Promise<Endpoint> {
  let read = first;
  for (let round = 0; round < 5; round++) {
    const next = change(read);
    if (await store.putEndpoint(next, false)) return { ...next, version: (read.version ?? 0) + 1 };
    read = await owned(store, first.id, caller);
  }
  throw new ProblemError(409, 'endpoint-changed', 'Endpoint changed meanwhile', `Event endpoint ${first.id} kept changing while this request was made: send it again.`);
}

/** Re-makes the deliveries of `events` to `endpoint` that are not pending there (resend, recover): paced by the deliverer. */
async function redeliver(store: EventStore, endpoint: Endpoint, events: { event: PaymentEvent; caller: string; createdMs: number }[], now: number, onlyExisting = false): Promise<number> {
  let n = 0;
  for (const stored of events) {
    const existing = await store.getDelivery(endpoint.id, stored.event.id);
    if (existing?.status === 'pending') continue;
    if (existing) {
      // Again from the start of the schedule, with its attempts kept.
      if (await store.recordAttempt({ ...existing, status: 'pending', tries: 0, nextAttemptAt: now + n }, existing.tries)) n++;
    } else if (!onlyExisting && (await fanOut(store, stored, now + n, [endpoint])).length > 0) n++;
  }
  return n;
}

export async function handleEvents(req: HttpRequest, deps: AppDeps): Promise<HttpReply> {
  const rt = eventsRuntime(deps);
  const store = rt.store;
  const caller = req.principal.caller;
  const now = deps.clock();
  const id = req.pathParameters.id ?? '';
  const route = `${req.method} ${req.path.replace(/^\/v1\/(event-endpoints|events)\/[^/]+/, '/v1/$1/{id}')}`;
  const noStore = { 'cache-control': 'no-store' };
  switch (route) {
    case 'POST /v1/event-endpoints': {
      const b = parse(endpointBody, bodyOf(req), 'endpoint');
      await urlChecked(b.url, rt.policy);
      const stamp = new Date(now).toISOString();
      const secret = newSecret();
      const e: Endpoint = {
        id: `ep_${randomBytes(12).toString('base64url')}`,
        caller,
        url: b.url,
        eventTypes: b.eventTypes ?? [],
        ...(b.description ? { description: b.description } : {}),
        secrets: [{ secret }],
        createdAt: stamp,
        createdMs: now,
        updatedAt: stamp,
      };
      await store.putEndpoint(e, true);
      // The secret is shown this once; listings show a hint of it.
      return { status: 201, body: { ...endpointView(e, now), secret }, headers: { ...noStore, location: `/v1/event-endpoints/${e.id}` } };
    }
    case 'GET /v1/event-endpoints':
      return { status: 200, body: { endpoints: (await store.listEndpoints(caller)).map((e) => endpointView(e, now)) }, headers: noStore };
    case 'GET /v1/event-endpoints/{id}':
      return { status: 200, body: endpointView(await owned(store, id, caller), now), headers: noStore };
    case 'PATCH /v1/event-endpoints/{id}': {
      const e = await owned(store, id, caller);
      const b = parse(patchBody, bodyOf(req), 'endpoint');
      if (b.url !== undefined) await urlChecked(b.url, rt.policy);
      const next = await changeEndpoint(store, e, caller, (read) => {
        const { disabled: _d, failingSince: _f, pausedUntil: _p, ...rest } = read;
        return {
          ...(b.enabled ? rest : read),
          ...(b.url !== undefined ? { url: b.url } : {}),
          ...(b.eventTypes !== undefined ? { eventTypes: b.eventTypes } : {}),
          ...(b.description !== undefined ? { description: b.description } : {}),
          updatedAt: new Date(now).toISOString(),
        };
      });
      if (b.enabled) rt.kick(e.id);
      return { status: 200, body: endpointView(next, now), headers: noStore };
    }
    case 'DELETE /v1/event-endpoints/{id}': {
      await owned(store, id, caller);
      await store.deleteEndpoint(id, caller);
      return { status: 204 };
    }
    case 'POST /v1/event-endpoints/{id}/rotate-secret': {
      const e = await owned(store, id, caller);
      const secret = newSecret();
      // The old secrets keep signing (both signatures in one header) for the overlap, then stop.
      const until = now + DEFAULT_DELIVERY.rotationOverlapMs;
      const next = await changeEndpoint(store, e, caller, (read) => {
        const kept = read.secrets.filter((s) => s.until === undefined || s.until > now).map((s) => ({ secret: s.secret, until: Math.min(s.until ?? until, until) }));
        return { ...read, secrets: [{ secret }, ...kept], updatedAt: new Date(now).toISOString() };
      });
      return { status: 200, body: { ...endpointView(next, now), secret }, headers: noStore };
    }
    case 'POST /v1/event-endpoints/{id}/test': {
      const e = await owned(store, id, caller);
      const event: PaymentEvent = { id: eventId(`test#${e.id}`, 0, now), type: 'endpoint.test', timestamp: new Date(now).toISOString(), data: { endpointId: e.id, message: 'a test event from paybridge' } };
      const stored = { event, caller, createdMs: now };
      await store.putEvent(stored);
      await fanOut(store, stored, now, [e]);
      rt.kick(e.id);
      return { status: 202, body: { eventId: event.id, statusUrl: `/v1/events/${event.id}` }, headers: noStore };
    }
    case 'GET /v1/event-endpoints/{id}/deliveries': {
      const e = await owned(store, id, caller);
      const events = await store.listEvents(caller, { limit: 50 });
      const found = await store.getMany(events.map((x) => `delivery#${e.id}#${x.event.id}`));
      const deliveries = events.map((x) => found.get(`delivery#${e.id}#${x.event.id}`) as unknown as Delivery | undefined).filter((d): d is Delivery => d !== undefined);
      return { status: 200, body: { deliveries: deliveries.map(deliveryView) }, headers: noStore };
    }
    case 'POST /v1/event-endpoints/{id}/recover': {
      const e = await owned(store, id, caller);
      const b = parse(recoverBody, bodyOf(req), 'recover request');
      const events = (await store.listEvents(caller, { limit: 10_000, since: Date.parse(b.since), oldestFirst: true })).filter((x) => e.eventTypes.length === 0 || (e.eventTypes as string[]).includes(x.event.type));
      const queued = await redeliver(store, e, events, now);
      rt.kick(e.id);
      return { status: 202, body: { endpointId: e.id, since: b.since, events: events.length, queued }, headers: noStore };
    }
    case 'GET /v1/events': {
      const limit = eventsLimit(req.query?.limit);
      return { status: 200, body: { events: (await store.listEvents(caller, { limit })).map((x) => x.event) }, headers: noStore };
    }
    case 'GET /v1/events/{id}': {
      const x = await ownedEvent(store, id, caller);
      const endpoints = await store.listEndpoints(caller);
      const deliveries = (await Promise.all(endpoints.map((e) => store.getDelivery(e.id, x.event.id)))).filter((d): d is Delivery => d !== undefined);
      return { status: 200, body: { ...x.event, deliveries: deliveries.map(deliveryView) }, headers: noStore };
    }
    case 'POST /v1/events/{id}/resend': {
      const x = await ownedEvent(store, id, caller);
      let queued = 0;
      for (const e of await store.listEndpoints(caller)) {
        if (e.disabled) continue;
        // An endpoint that takes only other types gets it again only if it had it (a test event sent to it),
        // never for the first time: as recover, a resend follows the endpoint's own choice of types.
        const wanted = e.eventTypes.length === 0 || (e.eventTypes as string[]).includes(x.event.type);
        queued += await redeliver(store, e, [x], now, !wanted);
        rt.kick(e.id);
      }
      return { status: 202, body: { eventId: x.event.id, queued }, headers: noStore };
    }
    default:
      throw new ProblemError(404, 'not-found', 'Not found', `There is no route ${req.method} ${req.path}.`);
  }
}

async function ownedEvent(store: EventStore, id: string, caller: string) {
  const x = /^evt_[A-Za-z0-9_-]{1,40}$/.test(id) ? await store.getEvent(id) : undefined;
  if (!x || x.caller !== caller) throw new ProblemError(404, 'event-not-found', 'Event not found', `No event ${id.slice(0, 60)} was sent to you.`);
  return x;
}

export { signingSecrets };
