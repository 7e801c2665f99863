import { awsDeps, type AppDeps } from '../shared/deps.js';
import { kontantanalysGetRoute } from '../shared/http/kontantanalys.js';

/** GET /v1/kontantanalys/{resource}/{externalId}: our record and its remote id. */
export const makeHandler = (getDeps: () => Promise<AppDeps>) => kontantanalysGetRoute(getDeps);

export const handler = makeHandler(awsDeps({ systems: ['kontantanalys'] }));
