import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { makeHandler as brpSale } from '../../functions/brp-sale.js';
import { makeHandler as cambioPaymentNotice } from '../../functions/cambio-payment-notice.js';
import { makeHandler as eventEndpoints } from '../../functions/event-endpoints.js';
import { makeHandler as getPayment } from '../../functions/get-payment.js';
import { makeHandler as kontantanalysGet } from '../../functions/kontantanalys-get.js';
import { makeHandler as kontantanalysPut } from '../../functions/kontantanalys-put.js';
import { makeHandler as nifCorporatePayment } from '../../functions/nif-corporate-payment.js';
import { makeHandler as nifMembershipPayment } from '../../functions/nif-membership-payment.js';
import { makeHandler as nifPayment } from '../../functions/nif-payment.js';
import { makeHandler as openapi } from '../../functions/openapi.js';
import type { AppDeps } from '../deps.js';
import { API_ROUTES, type ApiRoute, type RouteFunction } from '../http/routes.js';

type HttpHandler = (event: APIGatewayProxyEvent, context: Context) => Promise<APIGatewayProxyResult>;
type Factory = (getDeps: () => Promise<AppDeps>) => HttpHandler;

export interface HttpRoute extends Pick<ApiRoute, 'function' | 'method' | 'path'> {
  make: Factory;
}

/** A Record over the route table's names: a route added there without a factory here does not compile. */
const FACTORIES: Record<RouteFunction, Factory> = {
  cambioPaymentNotice,
  nifMembershipPayment,
  nifCorporatePayment,
  nifPayment,
  brpSale,
  kontantanalysPut,
  kontantanalysGet,
  getPayment,
  openapi,
  eventEndpoints,
};

/** Every HTTP route of shared/http/routes.ts, with the handler factory the local gateway calls. */
export const HTTP_ROUTES: HttpRoute[] = API_ROUTES.map((r) => ({ function: r.function, method: r.method, path: r.path, make: FACTORIES[r.function] }));
