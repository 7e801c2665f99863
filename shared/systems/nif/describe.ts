import { descriptionFactory, type SystemDescription } from '../types.js';
import type { NifPayment } from './schema.js';

export const NIF_MEMBERSHIP = 'nif-membership';
export const NIF_CORPORATE = 'nif-corporate';
export const NIF = 'nif';

/** What a NIF record's request holds (every generation). */
export interface NifRequest {
  clubId?: string;
  payment: NifPayment;
  /** True when paybridge made the externalId up (none was given), so reconciliation can still match. */
  generatedExternalId?: boolean;
}

/** Integer øre back to kronor for the wire: exact, because øre / 100 prints as its own decimal. */
export function oreToKronor(ore: number): number {
  return ore / 100;
}

function publicView(request: Record<string, unknown>): Record<string, unknown> {
  const r = request as unknown as NifRequest;
  const { amountOre, ...rest } = r.payment;
  return { ...(r.clubId ? { clubId: r.clubId } : {}), ...rest, amount: oreToKronor(amountOre), amountOre, ...(r.generatedExternalId ? { generatedExternalId: true } : {}) };
}

/** First generation (Membership, Corporate Sports): keyed `<ClubId>:<own key>`, reconciled through the read API. */
function firstGeneration(name: typeof NIF_MEMBERSHIP | typeof NIF_CORPORATE) {
  return descriptionFactory(name, (config): SystemDescription => ({
    name,
    // NIF adds a payment row: sending twice doubles it. The read API can be asked instead.
    ambiguity: 'reconcile',
    maxPerSecond: () => config.system(name).NIF_MAX_RPS,
    routeKey(routeKey) {
      const at = routeKey.indexOf(':');
      const club = routeKey.slice(0, at);
      return at > 0 && /^\d+$/.test(club) && at < routeKey.length - 1 ? { tenant: club, key: routeKey } : undefined;
    },
    publicRequest: publicView,
  }));
}

export const nifMembershipDescription = firstGeneration(NIF_MEMBERSHIP);
export const nifCorporateDescription = firstGeneration(NIF_CORPORATE);

/** Second generation: one tenant, keyed by externalId. */
export const nifDescription = descriptionFactory(NIF, (config): SystemDescription => ({
  name: NIF,
  // No documented read in the second generation: an ambiguous outcome waits for an operator.
  ambiguity: 'park',
  maxPerSecond: () => config.system(NIF).NIF_MAX_RPS,
  routeKey: (key) => (key ? { tenant: 'default', key } : undefined),
  publicRequest: publicView,
}));
