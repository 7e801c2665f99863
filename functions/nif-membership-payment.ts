import { awsDeps, type AppDeps } from '../shared/deps.js';
import { paymentRoute } from '../shared/http/payments.js';
import { logInvocation } from '../shared/log.js';
import { sqsQueue } from '../shared/queue/sqs.js';
import { dynamoTable } from '../shared/store/dynamo.js';
import { NIF_MEMBERSHIP, nifMembershipModule } from '../shared/systems/nif/index.js';

/** POST /v1/nif/membership/payments: NIF External Membership API, first generation (header ClubId). */
export const makeHandler = (getDeps: () => Promise<AppDeps>) => paymentRoute(NIF_MEMBERSHIP, getDeps);

export const handler = makeHandler(awsDeps({ modules: [nifMembershipModule], table: dynamoTable, queue: sqsQueue })).use(logInvocation());
