import { descriptionFactory, type SystemDescription } from '../types.js';

export const KONTANTANALYS = 'kontantanalys';

/** The five resources paybridge keeps in step (Kontantanalys' ServiceApi); the rules of each are in schema.ts. */
export const RESOURCES = ['providers', 'services', 'templates', 'adaptations', 'fee-models'] as const;
export type Resource = (typeof RESOURCES)[number];

export function kontantanalysKey(resource: string, externalId: string): string {
  return `${resource}:${externalId}`;
}

/** The scheduled run's summary is kept as a record under `run:latest` (shared/systems/kontantanalys/sync.ts). */
export const RUN_KEY_PREFIX = 'run:';
export const LATEST_RUN_KEY = `${RUN_KEY_PREFIX}latest`;

/**
 * The one address of a Kontantanalys object, on every reply about it (issue 15: the `location` of an
 * unchanged PUT was the object's route, unencoded, while every other reply named the generic status
 * route): its own route, `/v1/kontantanalys/<resource>/<externalId>`, each segment percent-encoded once,
 * where the GET answers with the record and its remote id. The run summary has no such route.
 */
export function kontantanalysPath(key: string): string | undefined {
  const at = key.indexOf(':');
  const resource = key.slice(0, at);
  if (at <= 0 || !(RESOURCES as readonly string[]).includes(resource)) return undefined;
  return `/v1/kontantanalys/${resource}/${encodeURIComponent(key.slice(at + 1).toWellFormed())}`;
}

/** Kontantanalys without its client or schemas: what the status route and the sweep need. */
export const kontantanalysDescription = descriptionFactory(KONTANTANALYS, (config): SystemDescription => ({
  name: KONTANTANALYS,
  // A create may have happened: ask (providers by matching, services by externalId) before creating again.
  ambiguity: 'reconcile',
  maxPerSecond: () => config.system(KONTANTANALYS).KONTANTANALYS_MAX_RPS,
  routeKey(key) {
    const at = key.indexOf(':');
    // `<resource>:<externalId>`, or `run:latest` for the scheduled run's summary.
    const known = [...RESOURCES, 'run'].includes(key.slice(0, at));
    return at > 0 && known && at < key.length - 1 ? { tenant: 'default', key } : undefined;
  },
  statusPath: kontantanalysPath,
  // Register data about service points: no personal data.
  publicRequest: (request) => request,
}));
