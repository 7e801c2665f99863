import * as z from 'zod';
import { SYSTEM_NAMES } from '../config.js';
import { saleSchema } from '../systems/brp/schema.js';
import { paymentNoticeSchema } from '../systems/cambio/schema.js';
import { envelopeSchema, EXTERNAL_ID_PATTERN, schemas as kontantanalysSchemas, RESOURCES } from '../systems/kontantanalys/schema.js';
import { nifBodySchema } from '../systems/nif/schema.js';
import { endpointBody, patchBody, recoverBody } from '../events/schema.js';
import { API_ROUTES } from './routes.js';
import { noRunYetSchema, paymentViewSchema, problemSchema } from './views.js';

type Json = Record<string, unknown>;

/** Input-side JSON Schema (2020-12, what OpenAPI 3.1 uses) of a zod schema. */
function schemaOf(s: z.ZodType): Json {
  const { $schema: _drop, ...rest } = z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' }) as Json;
  return rest;
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (name: string) => ({ 'application/json': { schema: ref(name) } });
const problem = (description: string) => ({ description, content: { 'application/problem+json': { schema: ref('Problem') } } });

const clubId = { name: 'ClubId', in: 'header', required: true, description: 'The club (or Corporate Sports club) the payment is posted for', schema: { type: 'string', pattern: '^[1-9][0-9]{0,11}$' } };
const idempotencyKey = { name: 'Idempotency-Key', in: 'header', required: false, description: 'Used as the key when the body has no externalId', schema: { type: 'string', maxLength: 100 } };
const patient = { name: 'patient', in: 'header', required: false, description: "Cambio's optional patient header; passed on, never shown or logged", schema: { type: 'string', maxLength: 64 } };

/** A signed read is one read (issue 20 item 8): its webhook-id is remembered with its path. */
const SIGNED_READ_REPLAYED =
  'Signed requests only: webhook-replayed, the webhook-id was received before with another route or path (a read is bound to its path; the same read again gets its first answer, header idempotent-replayed: true); webhook-in-progress, its first request is still being answered';

const PAYMENT_RESPONSES = {
  '200': { description: 'The same key again: the stored record (header idempotent-replayed: true)', content: json('PaymentRecord') },
  '201': { description: 'Posted', content: json('PaymentRecord') },
  '202': { description: 'Accepted: retrying, reconciling, held or unknown; follow the location header', content: json('PaymentRecord') },
  '400': problem('Malformed JSON or invalid fields (errors[] names each)'),
  '401': problem('No or bad x-api-key or webhook signature'),
  '403': problem("out-of-scope: the system, ClubId or Kontantanalys externalId is outside the caller's scope (CALLER_SCOPES); nothing recorded or sent"),
  '413': problem('Body over 256 KiB'),
  '415': problem('Not application/json'),
  '409': problem(
    'idempotency-key-taken: the key belongs to another caller. Signed webhook deliveries: webhook-replayed, the webhook-id was received before with another route, path, ClubId, Idempotency-Key, patient header or body (nothing recorded or sent); webhook-in-progress, its first delivery is still being handled (retry after Retry-After)',
  ),
  '422': problem('Rejected downstream, or the key was used before with another body'),
};

/** Events out (issue 21): what each route of a caller's endpoints and events does. */
const EVENT_OPS: Record<string, { summary: string; body?: string; ok: string }> = {
  'POST /v1/event-endpoints': { summary: "Register an endpoint; the answer shows its whsec_ secret, this once", body: 'EventEndpointCreate', ok: '201' },
  'GET /v1/event-endpoints': { summary: "The caller's endpoints (secrets as hints only)", ok: '200' },
  'GET /v1/event-endpoints/{id}': { summary: 'One endpoint', ok: '200' },
  'PATCH /v1/event-endpoints/{id}': { summary: 'Change the URL, event types or description, or re-enable it', body: 'EventEndpointPatch', ok: '200' },
  'DELETE /v1/event-endpoints/{id}': { summary: 'Delete the endpoint', ok: '204' },
  'POST /v1/event-endpoints/{id}/rotate-secret': { summary: 'A new secret (shown once); the old one also signs for 24 h', ok: '200' },
  'POST /v1/event-endpoints/{id}/test': { summary: 'Send an endpoint.test event to it', ok: '202' },
  'GET /v1/event-endpoints/{id}/deliveries': { summary: 'Its recent deliveries, each attempt with time, status, ms and the first bytes of the answer', ok: '200' },
  'POST /v1/event-endpoints/{id}/recover': { summary: 'Deliver every event since a time again, paced', body: 'EventRecover', ok: '202' },
  'GET /v1/events': { summary: "The caller's recent events, newest first", ok: '200' },
  'GET /v1/events/{id}': { summary: 'One event and its deliveries', ok: '200' },
  'POST /v1/events/{id}/resend': { summary: "Deliver the event again to every enabled endpoint of the caller", ok: '202' },
};

/** The read routes answer another caller's record as they answer one never received. */
const NOT_VISIBLE = "Not received, received from another caller (a record stored before callers were recorded is visible to every caller), or outside the caller's scope";

const BODIES: Record<string, { schema: string; params?: Json[]; summary: string }> = {
  '/v1/cambio/payment-notices': { schema: 'CambioPaymentNotice', params: [patient], summary: 'Cambio Open Services, Betalningsstatus: "Registrera betalning"' },
  '/v1/nif/membership/payments': { schema: 'NifMembershipPayment', params: [clubId, idempotencyKey], summary: 'NIF External Membership API, first generation' },
  '/v1/nif/corporate/payments': { schema: 'NifCorporatePayment', params: [clubId, idempotencyKey], summary: 'NIF External Membership API, Corporate Sports variant, first generation' },
  '/v1/nif/payments': { schema: 'NifPayment', summary: 'NIF payment API, second generation' },
  '/v1/brp/sales': { schema: 'BrpSale', summary: 'A completed sale in BRP API2' },
};

/** The OpenAPI 3.1 description of every route, built from the same zod schemas the routes validate with. */
export function buildOpenApi(): Json {
  const paths: Json = {};
  for (const route of API_ROUTES) {
    const op: Json = { operationId: route.function, security: [{ apiKey: [] }, { webhookSignature: [] }] };
    const body = BODIES[route.path];
    if (body) {
      Object.assign(op, {
        summary: body.summary,
        parameters: body.params ?? [],
        requestBody: { required: true, content: json(body.schema) },
        responses: PAYMENT_RESPONSES,
      });
    } else if (route.path.startsWith('/v1/kontantanalys/')) {
      const params = [
        { name: 'resource', in: 'path', required: true, schema: { type: 'string', enum: [...RESOURCES] } },
        { name: 'externalId', in: 'path', required: true, schema: { type: 'string', pattern: EXTERNAL_ID_PATTERN.source } },
      ];
      Object.assign(
        op,
        route.method === 'PUT'
          ? {
              summary: "Upsert a Kontantanalys (PiPoS ServiceApi) object by our externalId",
              description:
                'Every reply about the object (201 created, 200 updated or unchanged, 202 pending, 409 update-in-flight, 422 rejected) carries the header location: /v1/kontantanalys/{resource}/{externalId}, each segment percent-encoded once, the same as the body\'s statusUrl: the GET of that path shows the record and its remote id. A 409 idempotency-key-taken (another caller\'s object) carries none.',
              parameters: params,
              requestBody: { required: true, content: { 'application/json': { schema: { oneOf: RESOURCES.flatMap((r) => [ref(`Kontantanalys_${r}`), ref(`Kontantanalys_${r}_envelope`)]) } } } },
              responses: {
                ...PAYMENT_RESPONSES,
                '200': { description: 'Updated, or unchanged (nothing sent)', content: json('PaymentRecord') },
                '409': problem(`update-in-flight: the previous version is being sent, retry after Retry-After. ${PAYMENT_RESPONSES['409'].description}`),
              },
            }
          : {
              summary: 'Our record of a Kontantanalys object and its remote id',
              parameters: params,
              responses: { '200': { description: 'The record', content: json('PaymentRecord') }, '404': problem(NOT_VISIBLE), '409': problem(SIGNED_READ_REPLAYED) },
            },
      );
    } else if (route.path === '/v1/payments/{system}/{key}') {
      Object.assign(op, {
        summary: 'A payment record and its status',
        parameters: [
          { name: 'system', in: 'path', required: true, schema: { type: 'string', enum: [...SYSTEM_NAMES] } },
          { name: 'key', in: 'path', required: true, description: 'contactId; externalId for nif and brp; <ClubId>:<externalId> for the first-generation NIF routes', schema: { type: 'string' } },
        ],
        responses: {
          '200': {
            description: 'The record; for kontantanalys run:latest before the first scheduled run, status "no run yet" and when the run is scheduled',
            content: { 'application/json': { schema: { oneOf: [ref('PaymentRecord'), ref('KontantanalysNoRunYet')] } } },
          },
          '401': problem('Unauthenticated'),
          '404': problem(`Unknown system. ${NOT_VISIBLE}`),
          '409': problem(SIGNED_READ_REPLAYED),
        },
      });
    } else if (EVENT_OPS[`${route.method} ${route.path}`]) {
      const e = EVENT_OPS[`${route.method} ${route.path}`] as { summary: string; body?: string; ok: string };
      Object.assign(op, {
        summary: e.summary,
        parameters: route.path.includes('{id}')
          ? [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }]
          : `${route.method} ${route.path}` === 'GET /v1/events'
            ? [{ name: 'limit', in: 'query', required: false, description: 'How many of the newest events (100 when not given)', schema: { type: 'integer', minimum: 1, maximum: 1000 } }]
            : [],
        ...(e.body ? { requestBody: { required: true, content: json(e.body) } } : {}),
        responses: {
          [e.ok]: { description: e.ok === '204' ? 'Done' : 'See the summary' },
          ...(e.body ? { '400': problem('Invalid fields (errors[] names each); an endpoint URL into the network is refused') } : {}),
          '401': problem('Unauthenticated'),
          ...(route.path.includes('{id}') ? { '404': problem("No such endpoint or event of this caller's (another caller's answers the same)") } : {}),
        },
      });
    } else if (route.path === '/v1/openapi.json') {
      Object.assign(op, { summary: 'This document', responses: { '200': { description: 'OpenAPI 3.1', content: { 'application/json': { schema: { type: 'object' } } } } } });
    }
    (paths[route.path] ??= {}) as Json;
    (paths[route.path] as Json)[route.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'paybridge',
      version: '1',
      description: 'Posts payment events exactly once into Cambio, NIF, BRP and Tillväxtverket Kontantanalys. Generated from the zod schemas (npm run openapi); do not edit by hand.',
    },
    paths,
    components: {
      securitySchemes: {
        apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key', description: "A key of API_KEYS; its entry name=key names the caller (a bare key is its own caller). Each caller sees only the records it submitted, and posts and reads only within its scope (CALLER_SCOPES), if it has one." },
        webhookSignature: {
          type: 'apiKey',
          in: 'header',
          name: 'webhook-signature',
          description:
            "Standard Webhooks: webhook-id, webhook-timestamp and webhook-signature over the raw body, signed with one of the sender's secrets in WEBHOOK_SECRET (several at once while rotating), timestamp within 5 minutes. The caller is the sender. On every route, reads included, a webhook-id is one delivery: it is remembered for an hour with the route, the path, the ClubId, Idempotency-Key and patient headers and the body; the same delivery again gets the first answer (header idempotent-replayed: true), the same id with any of those changed gets 409 webhook-replayed.",
        },
      },
      schemas: {
        CambioPaymentNotice: schemaOf(paymentNoticeSchema),
        NifMembershipPayment: schemaOf(nifBodySchema('membership')),
        NifCorporatePayment: schemaOf(nifBodySchema('corporate')),
        NifPayment: schemaOf(nifBodySchema('gen2')),
        BrpSale: schemaOf(saleSchema),
        ...Object.fromEntries(RESOURCES.map((r) => [`Kontantanalys_${r}`, schemaOf(kontantanalysSchemas[r])])),
        ...Object.fromEntries(RESOURCES.map((r) => [`Kontantanalys_${r}_envelope`, schemaOf(envelopeSchema(r))])),
        PaymentRecord: schemaOf(paymentViewSchema),
        KontantanalysNoRunYet: schemaOf(noRunYetSchema),
        Problem: schemaOf(problemSchema),
        EventEndpointCreate: schemaOf(endpointBody),
        EventEndpointPatch: schemaOf(patchBody),
        EventRecover: schemaOf(recoverBody),
      },
    },
  };
}
