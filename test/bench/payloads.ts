/**
 * Typical requests of each system, as an integration sends them (README, "Routes"), each with its own
 * key: what `npm run capacity` and `npm run load` post. Dates are this year's, which NIF's second
 * generation requires of `periodFrom` (code 3010).
 */

export type PayloadSystem = 'cambio' | 'nif-membership' | 'nif-corporate' | 'nif' | 'brp' | 'kontantanalys';

export interface Delivery {
  system: PayloadSystem;
  method: 'POST' | 'PUT';
  path: string;
  headers: Record<string, string>;
  body: Record<string, unknown>;
  /** The status route's key (`GET /v1/payments/<system>/<key>`) and the sandbox's key for this payment. */
  key: string;
}

/** BRP's sandbox books each resource and start time once (409 TIME_NOT_AVAILABLE): each sale gets its own resource. */
let bookings = 0;

export const PAYLOAD_SYSTEMS: readonly PayloadSystem[] = ['cambio', 'nif-membership', 'nif-corporate', 'nif', 'brp', 'kontantanalys'];

export function delivery(system: PayloadSystem, id: string, year = new Date().getFullYear()): Delivery {
  const period = { paidDate: `${year}-01-15`, periodFrom: `${year}-01-15`, periodTo: `${year}-12-15` };
  switch (system) {
    case 'cambio':
      return { system, method: 'POST', path: '/v1/cambio/payment-notices', headers: {}, key: id, body: { status: 'PAID', contactId: id, paymentType: 'CARD' } };
    case 'nif-membership':
      return {
        system,
        method: 'POST',
        path: '/v1/nif/membership/payments',
        headers: { ClubId: '4568' },
        key: `4568:${id}`,
        body: { amount: '450', comment: 'This was paid for club membership', externalId: id, isFamilyMember: 'true', isPaid: 'false', orgId: '7896', paidToOrgId: '4568', paymentCategory: 'Club membership', paymentTypeId: 0, personId: '8675682', ...period },
      };
    case 'nif-corporate':
      return {
        system,
        method: 'POST',
        path: '/v1/nif/corporate/payments',
        headers: { ClubId: '16235' },
        key: `16235:${id}`,
        body: { amount: 777.0, externalId: id, isPaid: true, orgId: 16235, paidToOrgId: 16235, paymentCategory: 'test payment Category', paymentTypeId: 0, personId: 9283002, ...period },
      };
    case 'nif':
      return {
        system,
        method: 'POST',
        path: '/v1/nif/payments',
        headers: {},
        key: id,
        body: { amount: '450', externalId: id, isPaid: 'false', orgId: '7896', paidToOrgId: '4568', paymentCategory: 'Club membership', paymentTypeId: 0, personId: '8675682', ...period },
      };
    case 'brp':
      return {
        system,
        method: 'POST',
        path: '/v1/brp/sales',
        headers: {},
        key: id,
        body: {
          externalId: id,
          businessUnitId: 3,
          customer: { personId: 4711 },
          rows: [
            { productId: 10, quantity: 2 },
            { productId: 11, quantity: 1 },
          ],
          bookings: [{ productId: 20, startDate: `${year + 1}-01-15`, startTime: '18:00', resourceId: ++bookings }],
          payment: { amount: 65_000, paymentMethodId: 1 },
        },
      };
    case 'kontantanalys':
      return {
        system,
        method: 'PUT',
        path: `/v1/kontantanalys/templates/${id}`,
        headers: {},
        key: `templates:${id}`,
        body: { principalOrganisationId: 3, serviceTypeId: 3, serviceFormId: 4, openHoursPerWeek: 40, closedWeeksPerYear: 4 },
      };
  }
}
