import { awsDeps, type AppDeps } from '../shared/deps.js';
import { paymentRoute } from '../shared/http/payments.js';
import { BRP } from '../shared/systems/brp/index.js';

/** POST /v1/brp/sales: a completed sale into BRP API2 (order, rows, bookings, receipt), resumable step by step. */
export const makeHandler = (getDeps: () => Promise<AppDeps>) => paymentRoute(BRP, getDeps);

export const handler = makeHandler(awsDeps({ systems: ['brp'] }));
