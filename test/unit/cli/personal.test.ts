import { describe, expect, it } from 'vitest';
import { HIDDEN, scrubberFor } from '../../../shared/cli/personal.js';

const nifRecord = {
  key: '4568:3248',
  request: { clubId: '4568', payment: { personId: 8675682, orgId: 4568, paidToOrgId: 4568, externalId: '3248', amountOre: 45000, comment: 'for 8675682' } },
  checkpoints: {},
};

describe('person identifiers in what the command prints', () => {
  it("hides the record's own person id anywhere in a downstream's text, at any length", () => {
    const s = scrubberFor(nifRecord);
    expect(s.text('Payment details added for membership of 8675682 with 4568')).toBe(`Payment details added for membership of ${HIDDEN} with 4568`);
    const short = scrubberFor({ key: 'k', request: { payment: { personId: 4711 } } });
    expect(short.text('person 4711 not found; order 47110 is')).toBe(`person ${HIDDEN} not found; order 47110 is`);
  });

  it('hides any other long run of digits unless the record shows it as an id anyway', () => {
    const s = scrubberFor({ key: 'sale-1', request: { businessUnitId: 3, payment: { amount: 12345678 } }, checkpoints: { orderId: 99887766 } });
    expect(s.text('person 19121212 and 1212121212 unknown')).toBe(`person ${HIDDEN} and ${HIDDEN} unknown`);
    expect(s.text('order 99887766 has lefttopay 12345678')).toBe('order 99887766 has lefttopay 12345678');
    // Short numbers are codes, org ids, years, amounts: kept.
    expect(s.text('3001: club 16235 in 2026 owes 450')).toBe('3001: club 16235 in 2026 owes 450');
    // Swedish personnummer with its separator, and digits inside ids are left to the id.
    expect(s.text('patient 19121212-1212 and 121212-1212')).toBe(`patient ${HIDDEN} and ${HIDDEN}`);
    expect(s.text('request req-12345678abc')).toBe('request req-12345678abc');
  });

  it('does not take digits from free-text request fields as ids to show', () => {
    const s = scrubberFor({ key: 'k', request: { comment: 'paid by 87654321' } });
    expect(s.text('comment: paid by 87654321')).toBe(`comment: paid by ${HIDDEN}`);
  });

  it('keeps the error code the engine writes first, even when it equals a person id', () => {
    // The NIF sandbox answers personId 3001 with code 3001.
    const s = scrubberFor({ key: '4568:1', request: { payment: { personId: 3001 } }, error: { code: '3001' } });
    expect(s.text('3001: no membership for 3001')).toBe(`3001: no membership for ${HIDDEN}`);
  });

  it('hides person fields of a structure holding raw ids, keeps hashed stand-ins and everything else', () => {
    const s = scrubberFor(nifRecord);
    expect(s.value({ message: 'added for 8675682', updatedPersonId: 8675682, paymentId: 1200001, nested: [{ PersonId: '8675682' }] })).toEqual({
      message: `added for ${HIDDEN}`,
      updatedPersonId: HIDDEN,
      paymentId: 1200001,
      nested: [{ PersonId: HIDDEN }],
    });
    expect(s.value({ personId: 'h:3f9a1c', patient: 'provided (not shown)', comment: 'for 8675682' })).toEqual({ personId: 'h:3f9a1c', patient: 'provided (not shown)', comment: `for ${HIDDEN}` });
    const cambio = scrubberFor({ key: 'c-1', request: { contactId: 'c-1', patient: '19121212-1212' } });
    expect(cambio.text('patient 19121212-1212 unknown')).toBe(`patient ${HIDDEN} unknown`);
    expect(cambio.value({ patient: '19121212-1212' })).toEqual({ patient: HIDDEN });
  });
});
