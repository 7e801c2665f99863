import type { SYSTEM_NAMES } from '../systems/registry.js';

/** A downstream system, as the status route and the queue names spell it. */
export type SystemName = (typeof SYSTEM_NAMES)[number];

export interface ApiRoute {
  /** The function's name in the packaged stack (`paybridge-<stage>-<function>`). */
  function: string;
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** API Gateway path template. */
  path: string;
  /** The handler's file under functions/, without its extension. */
  file: string;
  /**
   * The system a payment route posts to: it decides the route's retry queue and SSM group. Read
   * routes post nowhere and have none.
   */
  posts?: SystemName;
}

/**
 * Every HTTP route of the public interface (DESIGN.md), declared once (issue 14). serverless.yml's
 * `http` events (shared/aws/stack.ts), the local gateway (shared/local/routes.ts) and the OpenAPI
 * paths (shared/http/openapi.ts) are built from this table, and test/integration/template.test.ts
 * fails if the packaged template, the local gateway or the OpenAPI document disagree.
 *
 * Plain data with no runtime import on purpose: osls loads it while packaging, and the openapi
 * Lambda bundles it, so it must not pull in the handlers (which is how the old table made an import
 * circle through functions/openapi.ts).
 */
export const API_ROUTES = [
  { function: 'cambioPaymentNotice', method: 'POST', path: '/v1/cambio/payment-notices', file: 'cambio-payment-notice', posts: 'cambio' },
  { function: 'nifMembershipPayment', method: 'POST', path: '/v1/nif/membership/payments', file: 'nif-membership-payment', posts: 'nif-membership' },
  { function: 'nifCorporatePayment', method: 'POST', path: '/v1/nif/corporate/payments', file: 'nif-corporate-payment', posts: 'nif-corporate' },
  { function: 'nifPayment', method: 'POST', path: '/v1/nif/payments', file: 'nif-payment', posts: 'nif' },
  { function: 'brpSale', method: 'POST', path: '/v1/brp/sales', file: 'brp-sale', posts: 'brp' },
  { function: 'kontantanalysPut', method: 'PUT', path: '/v1/kontantanalys/{resource}/{externalId}', file: 'kontantanalys-put', posts: 'kontantanalys' },
  { function: 'kontantanalysGet', method: 'GET', path: '/v1/kontantanalys/{resource}/{externalId}', file: 'kontantanalys-get' },
  { function: 'getPayment', method: 'GET', path: '/v1/payments/{system}/{key}', file: 'get-payment' },
  { function: 'openapi', method: 'GET', path: '/v1/openapi.json', file: 'openapi' },
  // Events out (issue 21): one function serves every route of a caller's endpoints and events.
  { function: 'eventEndpoints', method: 'POST', path: '/v1/event-endpoints', file: 'event-endpoints' },
  { function: 'eventEndpoints', method: 'GET', path: '/v1/event-endpoints', file: 'event-endpoints' },
  { function: 'eventEndpoints', method: 'GET', path: '/v1/event-endpoints/{id}', file: 'event-endpoints' },
  { function: 'eventEndpoints', method: 'PATCH', path: '/v1/event-endpoints/{id}', file: 'event-endpoints' },
  { function: 'eventEndpoints', method: 'DELETE', path: '/v1/event-endpoints/{id}', file: 'event-endpoints' },
  { function: 'eventEndpoints', method: 'POST', path: '/v1/event-endpoints/{id}/rotate-secret', file: 'event-endpoints' },
  { function: 'eventEndpoints', method: 'POST', path: '/v1/event-endpoints/{id}/test', file: 'event-endpoints' },
  { function: 'eventEndpoints', method: 'GET', path: '/v1/event-endpoints/{id}/deliveries', file: 'event-endpoints' },
  { function: 'eventEndpoints', method: 'POST', path: '/v1/event-endpoints/{id}/recover', file: 'event-endpoints' },
  { function: 'eventEndpoints', method: 'GET', path: '/v1/events', file: 'event-endpoints' },
  { function: 'eventEndpoints', method: 'GET', path: '/v1/events/{id}', file: 'event-endpoints' },
  { function: 'eventEndpoints', method: 'POST', path: '/v1/events/{id}/resend', file: 'event-endpoints' },
] as const satisfies readonly ApiRoute[];

/** The function name of each route: shared/local/routes.ts must give every one a handler factory. */
export type RouteFunction = (typeof API_ROUTES)[number]['function'];
