import { awsDeps, type AppDeps } from '../shared/deps.js';
import { paymentRoute } from '../shared/http/payments.js';
import { logInvocation } from '../shared/log.js';
import { sqsQueue } from '../shared/queue/sqs.js';
import { dynamoTable } from '../shared/store/dynamo.js';
import { CAMBIO, cambioModule } from '../shared/systems/cambio/index.js';

/** POST /v1/cambio/payment-notices: Cambio "Registrera betalning", the document's own body. */
export const makeHandler = (getDeps: () => Promise<AppDeps>) => paymentRoute(CAMBIO, getDeps);

export const handler = makeHandler(awsDeps({ modules: [cambioModule], table: dynamoTable, queue: sqsQueue })).use(logInvocation());
