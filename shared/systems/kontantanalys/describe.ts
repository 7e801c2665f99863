import { descriptionFactory, type SystemDescription } from '../types.js';

export const KONTANTANALYS = 'kontantanalys';

/** The five resources paybridge keeps in step (seed 001); the rules of each are in schema.ts. */
export const RESOURCES = ['providers', 'services', 'templates', 'adaptations', 'fee-models'] as const;
export type Resource = (typeof RESOURCES)[number];

export function kontantanalysKey(resource: string, externalId: string): string {
  return `${resource}:${externalId}`;
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
  // Register data about service points: no personal data.
  publicRequest: (request) => request,
}));
