import { awsDeps, type AppDeps } from '../shared/deps.js';
import { kontantanalysPutRoute } from '../shared/http/kontantanalys.js';

/** PUT /v1/kontantanalys/{resource}/{externalId}: upsert a cash-service object by our externalId. */
export const makeHandler = (getDeps: () => Promise<AppDeps>) => kontantanalysPutRoute(getDeps);

export const handler = makeHandler(awsDeps({ systems: ['kontantanalys'] }));
