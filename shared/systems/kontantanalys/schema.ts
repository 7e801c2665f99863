import * as z from 'zod';
import { isCalendarDate } from '../../dates.js';
import type { FieldError } from '../../http/problem.js';
import { orRequired } from '../messages.js';
import { RESOURCES, type Resource } from './describe.js';

/**
 * Tillväxtverket's PiPoS Kontantanalys ServiceApi (seed 001): the five resources paybridge keeps in
 * step, each with every rule the document states.
 */
export { RESOURCES, type Resource } from './describe.js';

/**
 * Our externalId in the path: ASCII letters, digits and `. - _ : @`, so it is well-formed Unicode
 * (no lone surrogate, issue 13) and means the same in a URL, a record key and a service's
 * `properties.externalId`.
 */
export const EXTERNAL_ID_PATTERN = /^[\w.\-:@]{1,100}$/;
export const externalIdSchema = z.string().regex(EXTERNAL_ID_PATTERN, 'must be 1–100 characters: letters, digits, . - _ : @');

/** The envelope's `type` and the API path per resource. Only /api/providers is shown in the seed. */
export const RESOURCE_API: Record<Resource, { type: string; path: string }> = {
  providers: { type: 'provider', path: 'api/providers' },
  services: { type: 'service', path: 'api/services' },
  templates: { type: 'template', path: 'api/templates' },
  adaptations: { type: 'adaptation', path: 'api/adaptations' },
  'fee-models': { type: 'feeModel', path: 'api/feemodels' },
};

type PropertyKind = 'bool' | 'int' | 'string';

/**
 * Properties every service type has. Seed 001, the properties table: "Alla | externalId | string |
 * Externt id som kan användas för att koppla service mot externt data (för att förenkla
 * uppdateringar)". paybridge puts the path's externalId there, which is how a lost create is found.
 */
export const COMMON_PROPERTIES: Record<string, PropertyKind> = { externalId: 'string' };

/**
 * Service types in the document's order. The document names them but gives no ids ("se Servicetyp"):
 * the ids here follow that order and are the one assumption to check against a real instance.
 */
export const SERVICE_TYPES: Record<number, { name: string; forms: string[]; properties: Record<string, PropertyKind> }> = {
  1: { name: 'Kontantuttag', forms: ['Bankkassa', 'Uttagsautomat', 'Över disk hos ombud'], properties: { lst: 'bool', ticketsRequired: 'bool' } },
  2: { name: 'Betalningsförmedling', forms: ['Bankkassa med kontanter', 'Bankkassa mot bankkonto/kort', 'Över disk hos ombud'], properties: { lst: 'bool' } },
  3: { name: 'Dagskasseinsättning', forms: ['Över disk hos ombud', 'Insättningsautomat', 'Bankkassa', 'Servicebox'], properties: { lst: 'bool' } },
  4: { name: 'Posttjänster', forms: ['Företagscenter', 'Paketautomat', 'Paketombud', 'Utlämning'], properties: {} },
  5: { name: 'Drivmedel', forms: ['Bensin', 'Diesel', 'E85', 'Uppgift saknas'], properties: {} },
  6: { name: 'Apoteksvaror', forms: ['Apotek', 'Apoteksombud'], properties: {} },
  7: { name: 'Dagligvaror fullsortiment', forms: ['Dagligvaror'], properties: { manned: 'bool', revenue: 'int', specialOperatingSupport: 'bool' } },
  8: { name: 'Dagligvaror ej fullsortiment', forms: ['Dagligvaror'], properties: { manned: 'bool', revenue: 'int' } },
};

const id = (what: string) => z.number({ error: orRequired(`must be a positive whole number (${what})`) }).int(`must be a positive whole number (${what})`).positive(`must be a positive whole number (${what})`);
const kronor = (what: string) => z.number({ error: orRequired(`must be a whole number of kronor (${what})`) }).int(`must be a whole number of kronor (${what})`).min(0, `must not be negative (${what})`);
const percent = z.number({ error: orRequired('must be a percentage from 0 to 100') }).min(0, 'must be a percentage from 0 to 100').max(100, 'must be a percentage from 0 to 100');
const text = (max = 2000) => z.string().max(max, `must be at most ${max} characters`);
const serviceTypeId = z
  .number({ error: orRequired('must be a service type id') })
  .int()
  .refine((v) => Object.hasOwn(SERVICE_TYPES, v), `must be a service type id: ${Object.entries(SERVICE_TYPES).map(([k, v]) => `${k} ${v.name}`).join(', ')}`);
const serviceFormId = id('a service form, see Serviceform');

/** Opening hours, limits and fees shared by templates and adaptations. */
const placeFields = {
  openHoursPerWeek: z.number().int('must be a whole number of hours from 0 to 168').min(0, 'must be from 0 to 168 hours').max(168, 'must be from 0 to 168 hours').optional(),
  closedWeeksPerYear: z.number().int('must be a whole number of weeks from 0 to 53').min(0, 'must be from 0 to 53 weeks').max(53, 'must be from 0 to 53 weeks').optional(),
  advancedOpenHourDescription: text().optional(),
  withdrawalLimit: kronor('0 when no maximum applies').optional(),
  minFlatFee: kronor('lowest fixed fee').optional(),
  minPercentageFee: percent.optional(),
  maxFlatFee: kronor('highest fixed fee').optional(),
  maxPercentageFee: percent.optional(),
  advancedFeeDescription: text().optional(),
  depositLimit: kronor('0 when no maximum applies').optional(),
  withdrawalLimitDescription: text().optional(),
  weeklyDepositLimit: kronor('0 when no maximum applies').optional(),
  accessBarrier: z.boolean('must be true or false').optional(),
  accessBarrierDescription: text().optional(),
};

const date = z
  .string({ error: orRequired('must be a date as YYYY-MM-DD') })
  .regex(/^\d{4}-\d{2}-\d{2}$/, { error: 'must be a date as YYYY-MM-DD', abort: true })
  .refine(isCalendarDate, 'is not a calendar date');

export const schemas = {
  providers: z.strictObject({
    name: z.string({ error: orRequired('must be a string') }).trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters'),
    code: text(50).optional(),
    visitingAddress: z.string({ error: orRequired('must be a string') }).trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters'),
    postalCode: z.string({ error: orRequired('must be a string') }).regex(/^\d{3} ?\d{2}$/, 'must be a Swedish postal code, e.g. "702 27"'),
    postTown: z.string({ error: orRequired('must be a string') }).trim().min(1, 'must not be empty').max(100, 'must be at most 100 characters'),
    // SWEREF 99 TM metres, as in the document's example (x 509886.4, y 6568855.5).
    x: z.number({ error: orRequired('must be a SWEREF 99 TM easting in metres') }).min(180_000, 'must be a SWEREF 99 TM easting inside Sweden (180 000–1 000 000 m)').max(1_000_000, 'must be a SWEREF 99 TM easting inside Sweden (180 000–1 000 000 m)'),
    y: z.number({ error: orRequired('must be a SWEREF 99 TM northing in metres') }).min(6_100_000, 'must be a SWEREF 99 TM northing inside Sweden (6 100 000–7 700 000 m)').max(7_700_000, 'must be a SWEREF 99 TM northing inside Sweden (6 100 000–7 700 000 m)'),
  }),
  services: z.strictObject({
    providerId: id('the service point, see Serviceplatser'),
    servicePrincipalId: id('the principal, see Huvudman'),
    serviceTypeId,
    // Values are checked per service type in crossFieldErrors, with a message naming the property.
    properties: z.record(z.string(), z.unknown(), { error: 'must be an object of properties' }).optional(),
    forms: z.array(z.string(), { error: orRequired('must be a list of forms') }).min(1, 'must name at least one form'),
    active: z.boolean({ error: orRequired('must be true or false') }),
    year: z.number().int('must be a year, or 0 for the current year').min(0, 'must be a year, or 0 for the current year').optional(),
    timelinessDate: date.optional(),
  }),
  templates: z.strictObject({ principalOrganisationId: id('the organisation owning the template'), serviceTypeId, serviceFormId, ...placeFields }),
  adaptations: z.strictObject({ serviceId: id('the service adapted'), serviceFormId, ...placeFields }),
  'fee-models': z.strictObject({
    supplierOrganisationId: id('the credit institution'),
    principalOrganisationId: id('the principal'),
    serviceTypeId,
    serviceFormId,
    minFlatFee: kronor('lowest fixed fee'),
    minPercentageFee: percent,
    maxFlatFee: kronor('highest fixed fee'),
    maxPercentageFee: percent,
    advancedWithdrawalFeeDescription: text().optional(),
    withdrawalLimit: kronor('0 when no maximum applies').optional(),
    weeklyDepositLimit: kronor('0 when no maximum applies').optional(),
    depositLimit: kronor('0 when no maximum applies').optional(),
    withdrawalLimitDescription: text().optional(),
    includedServiceIds: z.array(id('a service id')).optional(),
  }),
} as const;

/**
 * The API's own envelope (seed 001: `envelope = {"data": provider}` with `{'type': 'provider',
 * 'attributes': {...}}`; the C# example's Data has `attributes`, `id` and `type`), and nothing
 * else: `data.type` must be the resource's API type, and an unknown member of the envelope or of
 * `data` is refused by name, so a misspelt or misplaced member is never dropped silently. Strict
 * objects also bound the nesting: an unknown member is refused without being walked into.
 */
export function envelopeSchema(resource: Resource) {
  const { type } = RESOURCE_API[resource];
  return z.strictObject({
    data: z.strictObject(
      {
        type: z.literal(type, { error: orRequired(`must be "${type}", the API type of ${resource}`) }),
        // Generated by the server ("Genereras"); paybridge addresses the object by the remote id mapped to the path's externalId.
        id: z.number().int('must be a whole number (the id Kontantanalys generated)').positive('must be a whole number (the id Kontantanalys generated)').optional(),
        attributes: schemas[resource],
      },
      { error: orRequired(`must be an object: {"type": "${type}", "attributes": {...}}`) },
    ),
  });
}

/**
 * The timelinessDate to send for a confirmation on `confirmed` (YYYY-MM-DD, Stockholm), kept inside
 * what seed 001 allows: "För aktuellt år måste datumet ligga inom intervallet xxxx-01-01 till
 * aktuellt datum. För historiskt data ska datumet ligga inom året." A confirmation from last year,
 * sent on 1 January, therefore becomes 1 January of this year, never last year's date.
 */
export function timelinessWithin(confirmed: string, serviceYear: unknown, today: string): string {
  const current = Number(today.slice(0, 4));
  const year = typeof serviceYear === 'number' && serviceYear !== 0 ? serviceYear : current;
  const first = `${String(year).padStart(4, '0')}-01-01`;
  const last = year === current ? today : `${String(year).padStart(4, '0')}-12-31`;
  return confirmed < first ? first : confirmed > last ? last : confirmed;
}

/** What an unknown service property is told, naming the properties of its service type. */
export function unknownPropertyDetail(serviceTypeId: unknown): string {
  const type = typeof serviceTypeId === 'number' && Object.hasOwn(SERVICE_TYPES, serviceTypeId) ? SERVICE_TYPES[serviceTypeId] : undefined;
  if (!type) return 'is not a property of any service type';
  return `is not a property of ${type.name}; allowed: ${[...Object.keys(type.properties), ...Object.keys(COMMON_PROPERTIES)].join(', ')}`;
}

/** The rules that span fields: forms and properties per service type, years, dates, barriers, fee order. */
export function crossFieldErrors(resource: Resource, a: Record<string, unknown>, ctx: { today: string; extendedPermission: boolean }): FieldError[] {
  const errors: FieldError[] = [];
  if (a.accessBarrier === true && !(typeof a.accessBarrierDescription === 'string' && a.accessBarrierDescription.trim())) {
    errors.push({ pointer: '#/accessBarrierDescription', detail: 'is required when accessBarrier is true' });
  }
  for (const [min, max] of [['minFlatFee', 'maxFlatFee'], ['minPercentageFee', 'maxPercentageFee']] as const) {
    if (typeof a[min] === 'number' && typeof a[max] === 'number' && (a[min] as number) > (a[max] as number)) {
      errors.push({ pointer: `#/${max}`, detail: `must not be lower than ${min}` });
    }
  }
  if (resource !== 'services') return errors;
  const type = SERVICE_TYPES[a.serviceTypeId as number];
  if (type) {
    (a.forms as string[]).forEach((form, i) => {
      if (!type.forms.includes(form)) errors.push({ pointer: `#/forms/${i}`, detail: `"${form}" is not a form of ${type.name}; allowed: ${type.forms.join(', ')}` });
    });
    for (const [key, value] of Object.entries((a.properties as Record<string, unknown> | undefined) ?? {})) {
      // Own members only: a name every object has (constructor, hasOwnProperty) is no property (issue 20, item 9).
      const kind = Object.hasOwn(type.properties, key) ? type.properties[key] : Object.hasOwn(COMMON_PROPERTIES, key) ? COMMON_PROPERTIES[key] : undefined;
      if (!kind) {
        errors.push({ pointer: `#/properties/${key}`, detail: unknownPropertyDetail(a.serviceTypeId) });
      } else if (kind === 'string' ? typeof value !== 'string' : kind === 'bool' ? typeof value !== 'boolean' : !Number.isInteger(value) || (value as number) < 0) {
        errors.push({ pointer: `#/properties/${key}`, detail: kind === 'string' ? 'must be a string' : kind === 'bool' ? 'must be true or false' : 'must be a whole number (thousands of kronor)' });
      }
    }
  }
  const currentYear = Number(ctx.today.slice(0, 4));
  const year = a.year === undefined || a.year === 0 ? currentYear : (a.year as number);
  if (year > currentYear) errors.push({ pointer: '#/year', detail: `must not be in the future (0 means the current year, ${currentYear})` });
  else if (year < currentYear && !ctx.extendedPermission) {
    errors.push({ pointer: '#/year', detail: `${year} is a historic year: creating or updating historic data needs the extended permission (KONTANTANALYS_EXTENDED_PERMISSION)` });
  }
  if (typeof a.timelinessDate === 'string') {
    const d = a.timelinessDate;
    if (Number(d.slice(0, 4)) !== year) errors.push({ pointer: '#/timelinessDate', detail: `must lie within the service's year, ${year}` });
    else if (year === currentYear && d > ctx.today) errors.push({ pointer: '#/timelinessDate', detail: `must not be after today (${ctx.today})` });
  }
  return errors;
}
