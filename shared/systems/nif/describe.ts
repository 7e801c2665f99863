import { hashId } from '../../log.js';
import { descriptionFactory, type PersonalValue, type SystemDescription } from '../types.js';
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

/** How a personId is shown to callers: the keyed hash logs use for personal ids, never the id. */
function personRef(personId: unknown): string {
  return `ref:${hashId(String(personId))}`;
}

/**
 * The payment as the status route shows it: the person only as a keyed hash (enough to see that two
 * payments are for the same person), and the free-text comment, which can say anything about them,
 * only as given or not.
 */
function publicView(request: Record<string, unknown>): Record<string, unknown> {
  const r = request as unknown as NifRequest;
  const { amountOre, personId, comment, ...rest } = r.payment;
  return {
    ...(r.clubId ? { clubId: r.clubId } : {}),
    ...rest,
    personId: personRef(personId),
    ...(comment !== undefined ? { comment: 'provided (not shown)' } : {}),
    amount: oreToKronor(amountOre),
    amountOre,
    ...(r.generatedExternalId ? { generatedExternalId: true } : {}),
  };
}

/** NIF's answer repeats the person ("Payment details added for membership of 9283002 ...", updatedPersonId; the read API's rows). */
function personalValues(request: Record<string, unknown>): PersonalValue[] {
  const { personId, comment } = (request as unknown as NifRequest).payment;
  return [{ value: String(personId), shownAs: personRef(personId) }, ...(comment ? [{ value: comment, shownAs: 'comment (not shown)' }] : [])];
}

/** First generation (Membership, Corporate Sports): keyed `<ClubId>:<own key>`, reconciled through the read API. */
function firstGeneration(name: typeof NIF_MEMBERSHIP | typeof NIF_CORPORATE) {
  return descriptionFactory(name, (config): SystemDescription => ({
    name,
    // NIF adds a payment row: sending twice doubles it. The read API can be asked instead.
    ambiguity: 'reconcile',
    sendsOnItsSlot: true,
    maxPerSecond: () => config.system(name).NIF_MAX_RPS,
    routeKey(routeKey) {
      const at = routeKey.indexOf(':');
      const club = routeKey.slice(0, at);
      return at > 0 && /^\d+$/.test(club) && at < routeKey.length - 1 ? { tenant: club, key: routeKey } : undefined;
    },
    publicRequest: publicView,
    personalValues,
  }));
}

export const nifMembershipDescription = firstGeneration(NIF_MEMBERSHIP);
export const nifCorporateDescription = firstGeneration(NIF_CORPORATE);

/** Second generation: one tenant, keyed by externalId. */
export const nifDescription = descriptionFactory(NIF, (config): SystemDescription => ({
  name: NIF,
  // No documented read in the second generation: an ambiguous outcome waits for an operator.
  ambiguity: 'park',
  sendsOnItsSlot: true,
  maxPerSecond: () => config.system(NIF).NIF_MAX_RPS,
  routeKey: (key) => (key ? { tenant: 'default', key } : undefined),
  publicRequest: publicView,
  personalValues,
}));
