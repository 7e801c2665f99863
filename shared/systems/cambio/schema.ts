import * as z from 'zod';
import { ILL_FORMED_DETAIL, isWellFormedText } from '../../core/keys.js';
import { orRequired } from '../messages.js';


/** No control characters: ids end up in record keys and URLs. */
const printable = /^[^\u0000-\u001f\u007f]+$/;

/**
 * "Registrera betalning" (seed 000): `status` PAID, `contactId`, `paymentType` CASH|CARD, all
 * required. Unknown fields are refused so a misspelt field is named instead of silently dropped.
 */
export const paymentNoticeSchema = z.strictObject({
  status: z.literal('PAID', { error: orRequired('must be "PAID": Cambio registers only paid visits') }),
  contactId: z
    .string({ error: orRequired('must be a string') })
    .min(1, { error: 'must not be empty', abort: true })
    .max(128, { error: 'must be at most 128 characters', abort: true })
    // A lone surrogate passed every other rule, was posted, then broke the status URL (issue 13).
    .refine(isWellFormedText, { error: ILL_FORMED_DETAIL, abort: true })
    .regex(printable, { error: 'must not contain control characters', abort: true })
    .refine((v) => v.trim() === v, 'must not start or end with whitespace'),
  paymentType: z.enum(['CASH', 'CARD'], { error: orRequired('must be "CASH" or "CARD"') }),
});

export type PaymentNotice = z.infer<typeof paymentNoticeSchema>;

/** The optional `patient` request header Cambio accepts with a payment notice. */
export const patientHeaderSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(64, 'must be at most 64 characters')
  .regex(printable, 'must not contain control characters');

/** What is stored and sent: the body plus the header. */
export interface CambioRequest extends PaymentNotice {
  patient?: string;
}
