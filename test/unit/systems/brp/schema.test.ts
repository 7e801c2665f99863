import { describe, expect, it } from 'vitest';
import { ProblemError, fieldErrors } from '../../../../shared/http/problem.js';
import { checkUnsupported, saleSchema } from '../../../../shared/systems/brp/schema.js';

const SALE = {
  externalId: 'sale-1',
  businessUnitId: 3,
  customer: { personId: 4711 },
  rows: [{ productId: 10, quantity: 2 }],
  bookings: [{ productId: 20, startDate: '2026-12-01', startTime: '18:00', resourceId: 5 }],
  payment: { amount: 60_000, paymentMethodId: 1 },
};

const errorsOf = (body: unknown) => {
  const r = saleSchema.safeParse(body);
  return r.success ? [] : fieldErrors(r.error);
};

function unsupported(body: unknown): string[] {
  try {
    checkUnsupported(body);
    return [];
  } catch (err) {
    expect(err).toBeInstanceOf(ProblemError);
    expect((err as ProblemError).status).toBe(422);
    return ((err as ProblemError).errors ?? []).map((e) => e.pointer);
  }
}

describe('BRP sale schema', () => {
  it('accepts a sale with rows and bookings, an anonymous customer, rows only or bookings only', () => {
    expect(errorsOf(SALE)).toEqual([]);
    expect(errorsOf({ ...SALE, customer: { anonymous: true } })).toEqual([]);
    expect(errorsOf({ ...SALE, bookings: undefined })).toEqual([]);
    expect(errorsOf({ ...SALE, rows: undefined })).toEqual([]);
  });

  it.each([
    [{ externalId: undefined }, '#/externalId', 'is required'],
    [{ externalId: 'a b' }, '#/externalId', 'must be visible ASCII without spaces (it is sent as payment.transactionid)'],
    // Visible ASCII only, so a lone surrogate (issue 13) never becomes a key.
    [{ externalId: 'sale\ud800' }, '#/externalId', 'must be visible ASCII without spaces (it is sent as payment.transactionid)'],
    [{ externalId: 'x'.repeat(65) }, '#/externalId', 'must be at most 64 characters'],
    [{ businessUnitId: 0 }, '#/businessUnitId', 'must be a positive whole number (the BRP business unit (anläggning))'],
    [{ customer: { personId: 'x' } }, '#/customer', 'must be {"personId": <id>} or {"anonymous": true}'],
    [{ customer: undefined }, '#/customer', 'is required'],
    [{ rows: [{ productId: 10, quantity: 0 }] }, '#/rows/0/quantity', 'must be a whole number from 1 to 999'],
    [{ rows: [{ productId: 10, quantity: 1.5 }] }, '#/rows/0/quantity', 'must be a whole number from 1 to 999'],
    [{ rows: [{ productId: 10 }] }, '#/rows/0/quantity', 'is required'],
    [{ bookings: [{ productId: 20, startDate: '2026-02-30', startTime: '18:00', resourceId: 5 }] }, '#/bookings/0/startDate', 'is not a calendar date'],
    // An invalid Date whose toISOString() throws: was a 500 (issue 13's fuzz test).
    [{ bookings: [{ productId: 20, startDate: '0000-00-00', startTime: '18:00', resourceId: 5 }] }, '#/bookings/0/startDate', 'is not a calendar date'],
    [{ bookings: [{ productId: 20, startDate: '2026-12-01', startTime: '6:00', resourceId: 5 }] }, '#/bookings/0/startTime', 'must be a time as HH:MM (24-hour)'],
    [{ bookings: [{ productId: 20, startDate: '2026-12-01', startTime: '06:00' }] }, '#/bookings/0/resourceId', 'is required'],
    [{ payment: { amount: 0, paymentMethodId: 1 } }, '#/payment/amount', 'must be more than 0 öre'],
    [{ payment: { amount: '600', paymentMethodId: 1 } }, '#/payment/amount', 'must be the amount in öre, a whole number'],
    [{ payment: { amount: 600 } }, '#/payment/paymentMethodId', 'is required'],
    [{ rows: [], bookings: [] }, '#/rows', 'a sale needs at least one row or booking'],
    [{ note: 'x' }, '#/note', 'is not a field of this request'],
  ])('%j → %s', (change, pointer, detail) => {
    const body: Record<string, unknown> = { ...SALE, ...change };
    for (const [k, v] of Object.entries(change)) if (v === undefined) delete body[k];
    const errors = errorsOf(body);
    expect(errors[0]?.pointer).toBe(pointer);
    expect(errors[0]?.detail).toContain(detail);
  });
});

describe('what BRP does not support (seed 002, "Vi stödjer INTE")', () => {
  it.each([
    [{ payment: { ...SALE.payment, partial: true } }, '#/payment/partial'],
    [{ payment: { ...SALE.payment, method: 'invoice' } }, '#/payment/method'],
    [{ invoiceId: 77 }, '#/invoiceId'],
    [{ lateFee: 50 }, '#/interest'],
    [{ discountProductId: 9 }, '#/discount'],
    [{ repeat: 'weekly' }, '#/repeat'],
    [{ payerOrganisationId: 12 }, '#/payerOrganisationId'],
    [{ signUpFee: 100 }, '#/signUpFee'],
    [{ rows: [{ productId: 10, quantity: 1, price: 100 }] }, '#/rows/0/price'],
    [{ bookings: [{ ...SALE.bookings[0], players: [1] }] }, '#/bookings/0/players'],
    [{ bookings: [{ ...SALE.bookings[0], moveFrom: '2026-11-30T18:00' }] }, '#/bookings/0/moveFrom'],
  ])('%j is refused with 422 at %s', (change, pointer) => {
    expect(unsupported({ ...SALE, ...change })).toEqual([pointer]);
  });
  it('a plain sale passes', () => {
    expect(unsupported(SALE)).toEqual([]);
  });
});
