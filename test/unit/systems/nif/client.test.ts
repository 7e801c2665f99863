import { describe, expect, it } from 'vitest';
import { sameClub } from '../../../../shared/systems/nif/client.js';

/** What was sent for ClubId 4568 (seed 003's example: orgId 7896, paidToOrgId 4568). */
const sent = { orgId: 7896, paidToOrgId: 4568 };

describe('sameClub: a read-API row is ours only if every club field it carries agrees', () => {
  // Seed 003: "OrgId | Mandatory | Payment type 1 ClubId, Payment type 2 BranchId" and
  // "PaidToOrgId | Mandatory | Organization receiving the payment (club)"; ClubId is a request header.
  it('agrees on the fields present, in either casing and as numbers or strings', () => {
    expect(sameClub({ orgId: 7896, paidToOrgId: 4568 }, '4568', sent)).toBe(true);
    expect(sameClub({ OrgId: '7896', PaidToOrgId: '4568', ClubId: 4568 }, '4568', sent)).toBe(true);
    expect(sameClub({ paidToOrgId: 4568 }, '4568', sent)).toBe(true);
  });

  it('refuses a row of another club by any of them', () => {
    expect(sameClub({ paidToOrgId: 5555 }, '4568', sent)).toBe(false);
    expect(sameClub({ orgId: 5555, paidToOrgId: 4568 }, '4568', sent)).toBe(false);
    expect(sameClub({ clubId: '5555' }, '4568', sent)).toBe(false);
  });

  it('a row with no club field was read with this club\'s header and token: taken as this club\'s', () => {
    expect(sameClub({ externalReference: 'x' }, '4568', sent)).toBe(true);
    expect(sameClub({ orgId: null }, '4568', sent)).toBe(true);
  });
});
