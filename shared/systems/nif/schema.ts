import * as z from 'zod';
import { oreToKronor } from './describe.js';
import { ILL_FORMED_DETAIL, isWellFormedText } from '../../core/keys.js';
import { isCalendarDate } from '../../dates.js';
import type { FieldError } from '../../http/problem.js';
import { orRequired } from '../messages.js';

/**
 * NIF payment details, both generations (seeds 003 and 004). The documents' examples send numbers
 * and booleans as strings ("450", "true") and the tables spell fields with a capital first letter
 * (Amount), the examples without (amount): all of those are accepted and normalised here.
 */

export type NifVariant = 'membership' | 'corporate' | 'gen2';

/** Documented payment types per variant; anything else is NIF's code 3009. */
export const PAYMENT_TYPES: Record<NifVariant, Record<number, string>> = {
  membership: { 0: 'membership', 1: 'license', 2: 'training fee', 3: 'registration fee', 4: 'other' },
  corporate: { 0: 'membership', 2: 'group membership fee' },
  gen2: { 0: 'club membership', 2: 'branch training fee' },
};

const FIELDS = [
  'amount',
  'comment',
  'externalId',
  'isFamilyMember',
  'isPaid',
  'orgId',
  'paidDate',
  'paidToOrgId',
  'paymentCategory',
  'paymentTypeId',
  'periodFrom',
  'periodTo',
  'personId',
] as const;

/** Kronor with at most two decimals, as a number or a string, to integer øre without floating point. */
export function kronorToOre(value: unknown): number | undefined {
  let text: string;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return undefined;
    text = String(value);
  } else if (typeof value === 'string') {
    text = value.trim();
  } else {
    return undefined;
  }
  const m = /^(\d{1,9})(?:[.,](\d{1,2}))?$/.exec(text);
  if (!m?.[1]) return undefined;
  return Number(m[1]) * 100 + Number((m[2] ?? '').padEnd(2, '0'));
}

// Lives with the description (the status route shows amounts without loading these schemas).
export { oreToKronor } from './describe.js';

const boolish = z
  .union([z.boolean(), z.enum(['true', 'false', 'True', 'False', 'TRUE', 'FALSE'])], { error: orRequired('must be true or false (or "true"/"false")') })
  .transform((v) => (typeof v === 'boolean' ? v : v.toLowerCase() === 'true'));

const positiveId = (what: string) =>
  z
    .union([z.number(), z.string().trim().regex(/^\d+$/, `must be a positive whole number (${what})`)], { error: orRequired(`must be a positive whole number (${what})`) })
    .transform((v) => Number(v))
    .refine((v) => Number.isSafeInteger(v) && v > 0, `must be a positive whole number (${what})`);

const isoDate = (code: string) =>
  z
    .string({ error: orRequired('must be a date as YYYY-MM-DD') })
    .regex(/^\d{4}-\d{2}-\d{2}$/, { error: `must be a date as YYYY-MM-DD${code}`, abort: true })
    .refine(isCalendarDate, `is not a calendar date${code}`);

/**
 * ExternalId, ≤ 25 characters (seeds 003, 004). It is the key, so it must also be well-formed
 * Unicode: a lone surrogate was posted to NIF and then broke the status URL (issue 13).
 */
const externalIdText = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(25, 'must be at most 25 characters')
  .refine(isWellFormedText, { error: ILL_FORMED_DETAIL, abort: true });

/** The body schema of a variant, as the routes accept it (also the OpenAPI document's source). */
export function nifBodySchema(variant: NifVariant) {
  const types = PAYMENT_TYPES[variant];
  const allowed = Object.entries(types).map(([k, v]) => `${k} (${v})`).join(', ');
  return z.strictObject({
    amount: z.unknown().superRefine((v, ctx) => {
      if (v === undefined) ctx.addIssue({ code: 'custom', message: 'is required' });
      else if (kronorToOre(v) === undefined) ctx.addIssue({ code: 'custom', message: 'must be an amount in kronor, not negative, with at most two decimals (e.g. 450 or "450.50")' });
    }),
    comment: z.string().max(200, 'must be at most 200 characters').optional(),
    externalId: variant === 'gen2' ? z.union([z.string(), z.number()], { error: orRequired('must be a string') }).transform(String).pipe(externalIdText) : z.union([z.string(), z.number()]).transform(String).pipe(externalIdText).optional(),
    isFamilyMember: boolish.optional(),
    isPaid: variant === 'corporate' ? boolish.optional() : boolish,
    orgId: positiveId(variant === 'corporate' ? 'the club, or the group for payment type 2' : variant === 'gen2' ? 'the club, or the branch for payment type 2' : 'the club, the branch for type 2, or the allidrett group'),
    paidDate: isoDate(' (NIF 3007)'),
    paidToOrgId: positiveId('the organisation receiving the payment'),
    paymentCategory: z.string({ error: orRequired('must be a string') }).trim().min(1, 'must not be empty').max(127, 'must be at most 127 characters'),
    paymentTypeId: z
      .union([z.number(), z.string().trim().regex(/^\d+$/)], { error: orRequired(`must be one of ${allowed}`) })
      .transform((v) => Number(v))
      .refine((v) => Object.hasOwn(types, v), `must be one of ${allowed} (NIF 3009)`),
    periodFrom: isoDate(' (NIF 3006)'),
    periodTo: isoDate(' (NIF 3006)'),
    personId: positiveId('an existing NIF person id'),
  });
}

export interface NifPayment {
  amountOre: number;
  comment?: string;
  externalId?: string;
  isFamilyMember?: boolean;
  isPaid?: boolean;
  orgId: number;
  paidDate: string;
  paidToOrgId: number;
  paymentCategory: string;
  paymentTypeId: number;
  periodFrom: string;
  periodTo: string;
  personId: number;
}

/**
 * Field names with either casing of the first letter (`Amount`, `amount`) become the documents'
 * camelCase; a field given in both casings is refused rather than silently picking one.
 */
function normaliseKeys(body: unknown, errors: FieldError[]): unknown {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return body;
  // Without a prototype, "__proto__" is a member like any other (refused below as not a field), where on
  // a plain object its assignment replaced the prototype and smuggled its fields past both checks (issue 20, item 9).
  const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const [key, value] of Object.entries(body)) {
    const canonical = FIELDS.find((f) => f.toLowerCase() === key.toLowerCase() && f.slice(1) === key.slice(1)) ?? key;
    if (Object.hasOwn(out, canonical)) {
      errors.push({ pointer: `#/${key}`, detail: `is given twice (also as "${canonical}")` });
      continue;
    }
    out[canonical] = value;
  }
  return out;
}

/** Validates one payment for a variant; `today` is YYYY-MM-DD (the second generation needs this year). */
export function parseNifPayment(
  body: unknown,
  variant: NifVariant,
  today: string,
): { ok: true; value: NifPayment } | { ok: false; errors: FieldError[] } {
  const errors: FieldError[] = [];
  const normalised = normaliseKeys(body, errors);
  const parsed = nifBodySchema(variant).safeParse(normalised);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      if (issue.code === 'unrecognized_keys') {
        for (const k of issue.keys) errors.push({ pointer: `#/${k}`, detail: 'is not a field of this request' });
      } else {
        errors.push({ pointer: `#/${issue.path.join('/')}`, detail: issue.message });
      }
    }
    if (errors.length === 0) errors.push({ pointer: '#', detail: 'must be a JSON object' });
    return { ok: false, errors };
  }
  const v = parsed.data;
  if (v.periodFrom.slice(0, 4) !== v.periodTo.slice(0, 4)) {
    errors.push({ pointer: '#/periodTo', detail: 'must be in the same year as periodFrom (NIF 3000)' });
  } else if (v.periodTo <= v.periodFrom) {
    errors.push({ pointer: '#/periodTo', detail: 'must be after periodFrom (NIF 3006)' });
  }
  if (variant === 'gen2' && v.periodFrom.slice(0, 4) !== today.slice(0, 4)) {
    errors.push({ pointer: '#/periodFrom', detail: `must be in the current year, ${today.slice(0, 4)} (NIF 3010)` });
  }
  if (errors.length > 0) return { ok: false, errors };
  const value: NifPayment = {
    amountOre: kronorToOre(v.amount) as number,
    orgId: v.orgId,
    paidDate: v.paidDate,
    paidToOrgId: v.paidToOrgId,
    paymentCategory: v.paymentCategory,
    paymentTypeId: v.paymentTypeId,
    periodFrom: v.periodFrom,
    periodTo: v.periodTo,
    personId: v.personId,
    ...(v.comment !== undefined ? { comment: v.comment } : {}),
    ...(v.externalId !== undefined ? { externalId: v.externalId } : {}),
    ...(v.isFamilyMember !== undefined ? { isFamilyMember: v.isFamilyMember } : {}),
    ...(v.isPaid !== undefined ? { isPaid: v.isPaid } : {}),
  };
  return { ok: true, value };
}

/** The documents' JSON for the wire, amount back in kronor. */
export function toWire(p: NifPayment, variant: NifVariant): Record<string, unknown> {
  return {
    amount: oreToKronor(p.amountOre),
    ...(p.comment !== undefined ? { comment: p.comment } : {}),
    ...(p.externalId !== undefined ? { externalId: p.externalId } : {}),
    ...(p.isFamilyMember !== undefined ? { isFamilyMember: p.isFamilyMember } : {}),
    // Corporate Sports ignores IsPaid (seed 003) but lists it as mandatory: send what was given, else true.
    isPaid: p.isPaid ?? (variant === 'corporate' ? true : false),
    orgId: p.orgId,
    paidDate: p.paidDate,
    paidToOrgId: p.paidToOrgId,
    paymentCategory: p.paymentCategory,
    paymentTypeId: p.paymentTypeId,
    periodFrom: p.periodFrom,
    periodTo: p.periodTo,
    personId: p.personId,
  };
}
