import { awsDeps, type AppDeps } from '../shared/deps.js';
import { kontantanalysGetRoute } from '../shared/http/kontantanalys.js';
import { logInvocation } from '../shared/log.js';
import { dynamoTable } from '../shared/store/dynamo.js';
import { kontantanalysDescription } from '../shared/systems/kontantanalys/describe.js';

/** GET /v1/kontantanalys/{resource}/{externalId}: our record and its remote id. */
export const makeHandler = (getDeps: () => Promise<AppDeps>) => kontantanalysGetRoute(getDeps);

// A read: the description shows the record; no client, no queue.
export const handler = makeHandler(awsDeps({ descriptions: [kontantanalysDescription], table: dynamoTable })).use(logInvocation());
