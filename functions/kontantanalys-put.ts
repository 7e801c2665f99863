import { awsDeps, type AppDeps } from '../shared/deps.js';
import { kontantanalysPutRoute } from '../shared/http/kontantanalys.js';
import { logInvocation } from '../shared/log.js';
import { sqsQueue } from '../shared/queue/sqs.js';
import { dynamoTable } from '../shared/store/dynamo.js';
import { kontantanalysModule } from '../shared/systems/kontantanalys/index.js';

/** PUT /v1/kontantanalys/{resource}/{externalId}: upsert a cash-service object by our externalId. */
export const makeHandler = (getDeps: () => Promise<AppDeps>) => kontantanalysPutRoute(getDeps);

export const handler = makeHandler(awsDeps({ modules: [kontantanalysModule], table: dynamoTable, queue: sqsQueue })).use(logInvocation());
