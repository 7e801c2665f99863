import * as z from 'zod';
import { isCalendarDate } from '../../dates.js';
import { ProblemError, type FieldError } from '../../http/problem.js';
import { orRequired } from '../messages.js';

const id = (what: string) => z.number({ error: orRequired(`must be a positive whole number (${what})`) }).int(`must be a positive whole number (${what})`).positive(`must be a positive whole number (${what})`);

const row = z.strictObject({
  productId: id('a BRP product id'),
  quantity: z.number({ error: orRequired('must be a whole number from 1 to 999') }).int('must be a whole number from 1 to 999').min(1, 'must be a whole number from 1 to 999').max(999, 'must be a whole number from 1 to 999'),
});

const booking = z.strictObject({
  productId: id('a BRP service product id'),
  startDate: z
    .string({ error: orRequired('must be a date as YYYY-MM-DD') })
    .regex(/^\d{4}-\d{2}-\d{2}$/, { error: 'must be a date as YYYY-MM-DD', abort: true })
    .refine(isCalendarDate, 'is not a calendar date'),
  startTime: z.string({ error: orRequired('must be a time as HH:MM') }).regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be a time as HH:MM (24-hour)'),
  resourceId: id('the BRP resource booked'),
});

/**
 * `POST /v1/brp/sales`: one completed sale, as BRP API2 builds it (seed 002): an order, its rows,
 * service bookings, and one receipt paying the whole order. Money is integer öre.
 */
export const saleSchema = z
  .strictObject({
    externalId: z
      .string({ error: orRequired('must be a string') })
      .min(1, { error: 'must not be empty', abort: true })
      .max(64, { error: 'must be at most 64 characters', abort: true })
      .regex(/^[\x21-\x7e]+$/, 'must be visible ASCII without spaces (it is sent as payment.transactionid)'),
    businessUnitId: id('the BRP business unit (anläggning)'),
    customer: z.union([z.strictObject({ personId: id('a BRP person id') }), z.strictObject({ anonymous: z.literal(true) })], {
      error: orRequired('must be {"personId": <id>} or {"anonymous": true}'),
    }),
    rows: z.array(row).max(100, 'must have at most 100 rows').default([]),
    bookings: z.array(booking).max(20, 'must have at most 20 bookings').default([]),
    payment: z.strictObject({
      amount: z.number({ error: orRequired('must be the amount in öre, a whole number') }).int('must be the amount in öre, a whole number (öre, not kronor)').positive('must be more than 0 öre').max(100_000_000_00, 'must be at most 100 000 000 kronor'),
      paymentMethodId: id('the payment method id of this BRP installation'),
    }),
  })
  .refine((s) => s.rows.length + s.bookings.length > 0, { message: 'a sale needs at least one row or booking', path: ['rows'] });

export type Sale = z.infer<typeof saleSchema>;

/**
 * What seed 002 says BRP does not support, by the field names a request would use to ask for it.
 * Refused with 422 before anything is recorded, saying so, instead of a generic "unknown field".
 */
const UNSUPPORTED: { path: (b: Record<string, unknown>) => unknown; pointer: string; why: string }[] = [
  { pointer: '#/payment/partial', path: (b) => (b.payment as Record<string, unknown> | undefined)?.partial, why: 'BRP does not support part payment of an order: the payment must equal what is left to pay' },
  { pointer: '#/payment/method', path: (b) => ((b.payment as Record<string, unknown> | undefined)?.method === 'invoice' ? true : undefined), why: 'BRP does not support paying with an invoice' },
  { pointer: '#/invoiceId', path: (b) => b.invoiceId, why: "BRP does not support paying an invoice that belongs to another person or company through a sale" },
  { pointer: '#/interest', path: (b) => b.interest ?? b.lateFee, why: 'BRP does not support adding interest or late-payment products when paying an invoice' },
  { pointer: '#/discount', path: (b) => b.discount ?? b.discountProductId, why: 'BRP does not support discount products or discounts on value cards' },
  { pointer: '#/repeat', path: (b) => b.repeat ?? b.recurrence, why: 'BRP does not support repeated orders' },
  { pointer: '#/payerOrganisationId', path: (b) => b.payerOrganisationId, why: 'BRP does not support a payer organisation on subscriptions' },
  { pointer: '#/signUpFee', path: (b) => b.signUpFee ?? b.mandatorySubscriptionProduct, why: 'BRP does not support sign-up fees or mandatory subscription products' },
];

function unsupportedIn(body: Record<string, unknown>): FieldError[] {
  const out: FieldError[] = UNSUPPORTED.filter((u) => u.path(body) !== undefined).map((u) => ({ pointer: u.pointer, detail: u.why }));
  const rows = Array.isArray(body.rows) ? (body.rows as Record<string, unknown>[]) : [];
  rows.forEach((r, i) => {
    if (r && typeof r === 'object' && ('price' in r || 'priceChange' in r)) out.push({ pointer: `#/rows/${i}/price`, detail: 'BRP does not support changing the price of a product or subscription in a sale' });
  });
  const bookings = Array.isArray(body.bookings) ? (body.bookings as Record<string, unknown>[]) : [];
  bookings.forEach((b, i) => {
    if (b && typeof b === 'object' && 'players' in b) out.push({ pointer: `#/bookings/${i}/players`, detail: 'BRP does not support players on a service booking' });
    if (b && typeof b === 'object' && ('rebook' in b || 'moveFrom' in b)) out.push({ pointer: `#/bookings/${i}/moveFrom`, detail: 'BRP does not support moving the time of a service booking' });
  });
  return out;
}

export function unsupportedProblem(errors: FieldError[]): ProblemError {
  return new ProblemError(
    422,
    'unsupported-by-brp',
    'BRP does not support this sale',
    `${errors[0]?.detail ?? 'unsupported'}${errors.length > 1 ? ` (and ${errors.length - 1} more)` : ''}. Nothing was recorded or sent.`,
    errors,
  );
}

export function checkUnsupported(body: unknown): void {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return;
  const errors = unsupportedIn(body as Record<string, unknown>);
  if (errors.length > 0) throw unsupportedProblem(errors);
}
