import { describe, expect, it } from 'vitest';
import { ILL_FORMED_DETAIL } from '../../../../shared/core/keys.js';
import { fieldErrors } from '../../../../shared/http/problem.js';
import { paymentNoticeSchema } from '../../../../shared/systems/cambio/schema.js';

const errorsOf = (body: unknown) => {
  const r = paymentNoticeSchema.safeParse(body);
  return r.success ? [] : fieldErrors(r.error);
};

describe('Cambio payment notice schema (seed 000)', () => {
  it('accepts the document example with both payment types', () => {
    expect(errorsOf({ status: 'PAID', contactId: 'string', paymentType: 'CASH' })).toEqual([]);
    expect(errorsOf({ status: 'PAID', contactId: '12345', paymentType: 'CARD' })).toEqual([]);
    // A character outside the BMP is a surrogate pair: well-formed, accepted.
    expect(errorsOf({ status: 'PAID', contactId: 'besök-😀', paymentType: 'CARD' })).toEqual([]);
  });

  it.each([
    [{ contactId: 'x', paymentType: 'CASH' }, '#/status', 'is required'],
    [{ status: 'UNPAID', contactId: 'x', paymentType: 'CASH' }, '#/status', 'must be "PAID": Cambio registers only paid visits'],
    [{ status: 'paid', contactId: 'x', paymentType: 'CASH' }, '#/status', 'must be "PAID": Cambio registers only paid visits'],
    [{ status: 'PAID', paymentType: 'CASH' }, '#/contactId', 'is required'],
    [{ status: 'PAID', contactId: 7, paymentType: 'CASH' }, '#/contactId', 'must be a string'],
    [{ status: 'PAID', contactId: '', paymentType: 'CASH' }, '#/contactId', 'must not be empty'],
    [{ status: 'PAID', contactId: 'x'.repeat(129), paymentType: 'CASH' }, '#/contactId', 'must be at most 128 characters'],
    [{ status: 'PAID', contactId: 'a\nb', paymentType: 'CASH' }, '#/contactId', 'must not contain control characters'],
    [{ status: 'PAID', contactId: ' x', paymentType: 'CASH' }, '#/contactId', 'must not start or end with whitespace'],
    // Issue 13: posted to Cambio, then the status URL could not be built (encodeURIComponent threw).
    [{ status: 'PAID', contactId: 'repro\ud800', paymentType: 'CARD' }, '#/contactId', ILL_FORMED_DETAIL],
    [{ status: 'PAID', contactId: '\udc00', paymentType: 'CARD' }, '#/contactId', ILL_FORMED_DETAIL],
    [{ status: 'PAID', contactId: 'x' }, '#/paymentType', 'is required'],
    [{ status: 'PAID', contactId: 'x', paymentType: 'SWISH' }, '#/paymentType', 'must be "CASH" or "CARD"'],
    [{ status: 'PAID', contactId: 'x', paymentType: 'CASH', extra: true }, '#/extra', 'is not a field of this request'],
  ])('%j → %s %s', (body, pointer, detail) => {
    expect(errorsOf(body)).toEqual([{ pointer, detail }]);
  });
});
