/** Matching a provider against the ~17,000 already registered, before creating a second one (issue 5). */

export interface ProviderLike {
  name: string;
  visitingAddress: string;
  postalCode: string;
  x: number;
  y: number;
}

export interface Match {
  remoteId: number;
  by: 'name-and-address' | 'coordinates';
  distanceM: number;
  remoteName: string;
}

/** Case, accents, punctuation and spacing do not make two places different. */
export function normalise(s: string): string {
  return s
    .normalize('NFD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
}

/** SWEREF 99 TM is a projected grid in metres: plain Euclidean distance is the distance on the ground. */
export function distanceM(a: { x: number; y: number }, b: { x: number; y: number }): number {
  return Math.hypot(a.x - b.x, a.y - b.y);
}

/**
 * The best existing provider for `ours`: the same normalised name, visiting address and postal code
 * (nearest first when several), else the nearest within `maxDistanceM`.
 */
export function findMatch(ours: ProviderLike, existing: { id: number; attributes: Partial<ProviderLike> }[], maxDistanceM: number): Match | undefined {
  const name = normalise(ours.name);
  const address = normalise(ours.visitingAddress);
  const postal = ours.postalCode.replace(/\D/g, '');
  let best: Match | undefined;
  for (const p of existing) {
    const a = p.attributes;
    const d = typeof a.x === 'number' && typeof a.y === 'number' ? distanceM(ours, { x: a.x, y: a.y }) : Number.POSITIVE_INFINITY;
    const sameText =
      typeof a.name === 'string' &&
      typeof a.visitingAddress === 'string' &&
      normalise(a.name) === name &&
      normalise(a.visitingAddress) === address &&
      (typeof a.postalCode !== 'string' || a.postalCode.replace(/\D/g, '') === postal);
    const candidate: Match | undefined = sameText
      ? { remoteId: p.id, by: 'name-and-address', distanceM: d, remoteName: String(a.name) }
      : d <= maxDistanceM
        ? { remoteId: p.id, by: 'coordinates', distanceM: d, remoteName: String(a.name ?? '') }
        : undefined;
    if (!candidate) continue;
    const rank = (m: Match) => (m.by === 'name-and-address' ? 0 : 1);
    if (!best || rank(candidate) < rank(best) || (rank(candidate) === rank(best) && candidate.distanceM < best.distanceM)) best = candidate;
  }
  return best && { ...best, distanceM: Number.isFinite(best.distanceM) ? Math.round(best.distanceM * 10) / 10 : -1 };
}
