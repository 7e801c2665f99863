import { awsDeps, type AppDeps } from '../shared/deps.js';
import { paymentRoute } from '../shared/http/payments.js';
import { logInvocation } from '../shared/log.js';
import { sqsQueue } from '../shared/queue/sqs.js';
import { dynamoTable } from '../shared/store/dynamo.js';
import { NIF_CORPORATE, nifCorporateModule } from '../shared/systems/nif/index.js';

/** POST /v1/nif/corporate/payments: NIF Corporate Sports API, first generation (header ClubId). */
export const makeHandler = (getDeps: () => Promise<AppDeps>) => paymentRoute(NIF_CORPORATE, getDeps);

export const handler = makeHandler(awsDeps({ modules: [nifCorporateModule], table: dynamoTable, queue: sqsQueue })).use(logInvocation());
