import type { AppDeps } from '../shared/deps.js';
import { awsDeps } from '../shared/deps.js';
import { paymentRoute } from '../shared/http/payments.js';
import { CAMBIO } from '../shared/systems/cambio/index.js';

/** POST /v1/cambio/payment-notices: Cambio "Registrera betalning", the document's own body. */
export const makeHandler = (getDeps: () => Promise<AppDeps>) => paymentRoute(CAMBIO, getDeps);

export const handler = makeHandler(awsDeps({ systems: ['cambio'] }));
