import { awsDeps, type AppDeps } from '../shared/deps.js';
import { paymentRoute } from '../shared/http/payments.js';
import { logInvocation } from '../shared/log.js';
import { sqsQueue } from '../shared/queue/sqs.js';
import { dynamoTable } from '../shared/store/dynamo.js';
import { BRP, brpModule } from '../shared/systems/brp/index.js';

/** POST /v1/brp/sales: a completed sale into BRP API2 (order, rows, bookings, receipt), resumable step by step. */
export const makeHandler = (getDeps: () => Promise<AppDeps>) => paymentRoute(BRP, getDeps);

export const handler = makeHandler(awsDeps({ modules: [brpModule], table: dynamoTable, queue: sqsQueue })).use(logInvocation());
