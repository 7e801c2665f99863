import { awsDeps, type AppDeps } from '../shared/deps.js';
import { paymentRoute } from '../shared/http/payments.js';
import { logInvocation } from '../shared/log.js';
import { sqsQueue } from '../shared/queue/sqs.js';
import { dynamoTable } from '../shared/store/dynamo.js';
import { NIF, nifModule } from '../shared/systems/nif/index.js';

/** POST /v1/nif/payments: NIF payment API, second generation. */
export const makeHandler = (getDeps: () => Promise<AppDeps>) => paymentRoute(NIF, getDeps);

export const handler = makeHandler(awsDeps({ modules: [nifModule], table: dynamoTable, queue: sqsQueue })).use(logInvocation());
