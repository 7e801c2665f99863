import { descriptionFactory, type SystemDescription } from '../types.js';

export const BRP = 'brp';

/** BRP without its client or schemas: what the status route and the sweep need. */
export const brpDescription = descriptionFactory(BRP, (config): SystemDescription => ({
  name: BRP,
  // An order may exist after an ambiguous step: read it back before going on (shared/systems/brp/index.ts).
  ambiguity: 'reconcile',
  maxPerSecond: () => config.system(BRP).BRP_MAX_RPS,
  routeKey: (key) => (key ? { tenant: 'default', key } : undefined),
  // A sale holds ids, products and amounts, nothing personal beyond BRP's person id.
  publicRequest: (request) => request,
}));
