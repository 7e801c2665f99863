import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { makeHandler as brpSale } from '../../functions/brp-sale.js';
import { makeHandler as cambioPaymentNotice } from '../../functions/cambio-payment-notice.js';
import { makeHandler as getPayment } from '../../functions/get-payment.js';
import { makeHandler as kontantanalysGet } from '../../functions/kontantanalys-get.js';
import { makeHandler as kontantanalysPut } from '../../functions/kontantanalys-put.js';
import { makeHandler as nifCorporatePayment } from '../../functions/nif-corporate-payment.js';
import { makeHandler as nifMembershipPayment } from '../../functions/nif-membership-payment.js';
import { makeHandler as nifPayment } from '../../functions/nif-payment.js';
import { makeHandler as openapi } from '../../functions/openapi.js';
import type { AppDeps } from '../deps.js';

type HttpHandler = (event: APIGatewayProxyEvent, context: Context) => Promise<APIGatewayProxyResult>;

export interface HttpRoute {
  /** The function's name in serverless.yml. */
  function: string;
  method: 'GET' | 'POST' | 'PUT';
  /** API Gateway path template. */
  path: string;
  make: (getDeps: () => Promise<AppDeps>) => HttpHandler;
}

/** Every HTTP route, as serverless.yml declares them (test/unit/serverless.test.ts keeps the two equal). */
export const HTTP_ROUTES: HttpRoute[] = [
  { function: 'cambioPaymentNotice', method: 'POST', path: '/v1/cambio/payment-notices', make: cambioPaymentNotice },
  { function: 'nifMembershipPayment', method: 'POST', path: '/v1/nif/membership/payments', make: nifMembershipPayment },
  { function: 'nifCorporatePayment', method: 'POST', path: '/v1/nif/corporate/payments', make: nifCorporatePayment },
  { function: 'nifPayment', method: 'POST', path: '/v1/nif/payments', make: nifPayment },
  { function: 'brpSale', method: 'POST', path: '/v1/brp/sales', make: brpSale },
  { function: 'kontantanalysPut', method: 'PUT', path: '/v1/kontantanalys/{resource}/{externalId}', make: kontantanalysPut },
  { function: 'kontantanalysGet', method: 'GET', path: '/v1/kontantanalys/{resource}/{externalId}', make: kontantanalysGet },
  { function: 'getPayment', method: 'GET', path: '/v1/payments/{system}/{key}', make: getPayment },
  { function: 'openapi', method: 'GET', path: '/v1/openapi.json', make: openapi },
];
