import { describe, expect, it } from 'vitest';
import { fieldErrors } from '../../../../shared/http/problem.js';
import { crossFieldErrors, externalIdSchema, schemas, timelinessWithin, type Resource } from '../../../../shared/systems/kontantanalys/schema.js';

const TODAY = '2026-11-22';
const valid: Record<Resource, Record<string, unknown>> = {
  providers: { name: 'INGO Örebro, Adolfsbergsvägen', visitingAddress: 'Adolfsbergsvägen 4', postalCode: '702 27', postTown: 'ÖREBRO', x: 509886.4, y: 6568855.5 },
  services: { providerId: 1, servicePrincipalId: 2, serviceTypeId: 1, forms: ['Uttagsautomat'], active: true, properties: { lst: true, ticketsRequired: false } },
  templates: { principalOrganisationId: 3, serviceTypeId: 3, serviceFormId: 4, openHoursPerWeek: 40, closedWeeksPerYear: 4, minPercentageFee: 0, maxPercentageFee: 2.5 },
  adaptations: { serviceId: 9, serviceFormId: 4, accessBarrier: true, accessBarrierDescription: 'Inträdesbiljett krävs' },
  'fee-models': { supplierOrganisationId: 1, principalOrganisationId: 2, serviceTypeId: 1, serviceFormId: 3, minFlatFee: 0, minPercentageFee: 0, maxFlatFee: 25, maxPercentageFee: 1.5, includedServiceIds: [19529744] },
};

function errorsOf(resource: Resource, change: Record<string, unknown>, extendedPermission = false) {
  const body: Record<string, unknown> = { ...valid[resource], ...change };
  for (const [k, v] of Object.entries(change)) if (v === undefined) delete body[k];
  const parsed = schemas[resource].safeParse(body);
  if (!parsed.success) return fieldErrors(parsed.error);
  return crossFieldErrors(resource, parsed.data as Record<string, unknown>, { today: TODAY, extendedPermission });
}

describe('Kontantanalys rules (seed 001)', () => {
  it.each(Object.keys(valid) as Resource[])('a valid %s passes', (resource) => {
    expect(errorsOf(resource, {})).toEqual([]);
  });

  it.each<[Resource, string]>([
    ['services', 'providerId'], ['services', 'servicePrincipalId'], ['services', 'serviceTypeId'], ['services', 'forms'], ['services', 'active'],
    ['templates', 'principalOrganisationId'], ['templates', 'serviceTypeId'], ['templates', 'serviceFormId'],
    ['adaptations', 'serviceId'], ['adaptations', 'serviceFormId'],
    ['fee-models', 'supplierOrganisationId'], ['fee-models', 'principalOrganisationId'], ['fee-models', 'serviceTypeId'], ['fee-models', 'serviceFormId'],
    ['fee-models', 'minFlatFee'], ['fee-models', 'minPercentageFee'], ['fee-models', 'maxFlatFee'], ['fee-models', 'maxPercentageFee'],
    ['providers', 'name'], ['providers', 'x'], ['providers', 'y'],
  ])('%s: %s is required', (resource, field) => {
    expect(errorsOf(resource, { [field]: undefined })).toContainEqual({ pointer: `#/${field}`, detail: 'is required' });
  });

  it.each<[string, Resource, Record<string, unknown>, string, string]>([
    ['form not of the type', 'services', { forms: ['Paketautomat'] }, '#/forms/0', '"Paketautomat" is not a form of Kontantuttag; allowed: Bankkassa, Uttagsautomat, Över disk hos ombud'],
    ['no form', 'services', { forms: [] }, '#/forms', 'must name at least one form'],
    ['property not of the type', 'services', { properties: { manned: true } }, '#/properties/manned', 'is not a property of Kontantuttag; allowed: lst, ticketsRequired'],
    ['property of a type that has none', 'services', { serviceTypeId: 4, forms: ['Paketombud'], properties: { lst: true } }, '#/properties/lst', 'is not a property of Posttjänster; allowed: externalId'],
    ['bool property not a bool', 'services', { properties: { lst: 'yes' } }, '#/properties/lst', 'must be true or false'],
    ['revenue not a whole number', 'services', { serviceTypeId: 7, forms: ['Dagligvaror'], properties: { revenue: 1.5 } }, '#/properties/revenue', 'must be a whole number (thousands of kronor)'],
    ['unknown service type', 'services', { serviceTypeId: 9 }, '#/serviceTypeId', 'must be a service type id'],
    ['historic year without permission', 'services', { year: 2024 }, '#/year', '2024 is a historic year: creating or updating historic data needs the extended permission (KONTANTANALYS_EXTENDED_PERMISSION)'],
    ['future year', 'services', { year: 2027 }, '#/year', 'must not be in the future (0 means the current year, 2026)'],
    ['timeliness in the future', 'services', { timelinessDate: '2026-11-23' }, '#/timelinessDate', 'must not be after today (2026-11-22)'],
    ['timeliness not a date at all (was a 500: toISOString threw)', 'services', { timelinessDate: '0000-00-00' }, '#/timelinessDate', 'is not a calendar date'],
    ['timeliness outside the year', 'services', { year: 0, timelinessDate: '2025-12-31' }, '#/timelinessDate', "must lie within the service's year, 2026"],
    ['openHoursPerWeek 169', 'templates', { openHoursPerWeek: 169 }, '#/openHoursPerWeek', 'must be from 0 to 168 hours'],
    ['openHoursPerWeek -1', 'adaptations', { openHoursPerWeek: -1 }, '#/openHoursPerWeek', 'must be from 0 to 168 hours'],
    ['closedWeeksPerYear 54', 'templates', { closedWeeksPerYear: 54 }, '#/closedWeeksPerYear', 'must be from 0 to 53 weeks'],
    ['percentage over 100', 'fee-models', { maxPercentageFee: 100.5 }, '#/maxPercentageFee', 'must be a percentage from 0 to 100'],
    ['percentage below 0', 'templates', { minPercentageFee: -0.1 }, '#/minPercentageFee', 'must be a percentage from 0 to 100'],
    ['min above max', 'fee-models', { minFlatFee: 30, maxFlatFee: 25 }, '#/maxFlatFee', 'must not be lower than minFlatFee'],
    ['flat fee in öre or decimals', 'fee-models', { minFlatFee: 2.5 }, '#/minFlatFee', 'must be a whole number of kronor'],
    ['barrier without a description', 'adaptations', { accessBarrierDescription: undefined }, '#/accessBarrierDescription', 'is required when accessBarrier is true'],
    ['postal code', 'providers', { postalCode: '70227X' }, '#/postalCode', 'must be a Swedish postal code, e.g. "702 27"'],
    ['coordinates in WGS84 by mistake', 'providers', { x: 15.2, y: 59.27 }, '#/x', 'must be a SWEREF 99 TM easting inside Sweden'],
  ])('%s', (_name, resource, change, pointer, detail) => {
    const errors = errorsOf(resource, change);
    expect(errors[0]?.pointer).toBe(pointer);
    expect(errors[0]?.detail).toContain(detail);
  });

  it('passing edges: 0 and 168 hours, 0 and 53 weeks, 0 and 100 %, year 0, today, historic with permission', () => {
    expect(errorsOf('templates', { openHoursPerWeek: 0, closedWeeksPerYear: 53, minPercentageFee: 0, maxPercentageFee: 100 })).toEqual([]);
    expect(errorsOf('templates', { openHoursPerWeek: 168, closedWeeksPerYear: 0 })).toEqual([]);
    expect(errorsOf('services', { year: 0, timelinessDate: '2026-01-01' })).toEqual([]);
    expect(errorsOf('services', { year: 2026, timelinessDate: TODAY })).toEqual([]);
    expect(errorsOf('services', { year: 2024, timelinessDate: '2024-12-31' }, true)).toEqual([]);
    expect(errorsOf('adaptations', { accessBarrier: false, accessBarrierDescription: undefined })).toEqual([]);
    expect(errorsOf('services', { serviceTypeId: 3, forms: ['Servicebox', 'Bankkassa'], properties: { lst: false } })).toEqual([]);
  });
});

describe('Kontantanalys externalId in the path', () => {
  it('takes letters, digits and . - _ : @, 1–100 characters; refuses a lone surrogate (issue 13), % and /', () => {
    for (const ok of ['atm-17', 'a.b_c:d@e', 'x'.repeat(100)]) expect(externalIdSchema.safeParse(ok).success).toBe(true);
    for (const bad of ['', 'x'.repeat(101), 'atm\ud800', '\udc00', 'a%25b', 'a/b', 'Åre']) expect(externalIdSchema.safeParse(bad).success).toBe(false);
  });
});

describe('timelinessDate derived from a confirmation', () => {
  // Seed 001, timelinessDate: "För aktuellt år måste datumet ligga inom intervallet xxxx-01-01 till
  // aktuellt datum. För historiskt data ska datumet ligga inom året."
  it('stays between 1 January of the current year and today: a run on 1 January never sends last year\'s date', () => {
    expect(timelinessWithin('2026-12-30', undefined, '2027-01-01')).toBe('2027-01-01');
    expect(timelinessWithin('2026-12-30', 0, '2027-01-01')).toBe('2027-01-01');
    expect(timelinessWithin('2027-03-04', undefined, '2027-06-01')).toBe('2027-03-04');
    expect(timelinessWithin('2027-06-02', undefined, '2027-06-01')).toBe('2027-06-01');
  });

  it('for a historic year, stays within that year', () => {
    expect(timelinessWithin('2027-01-05', 2025, '2027-01-05')).toBe('2025-12-31');
    expect(timelinessWithin('2024-07-01', 2025, '2027-01-05')).toBe('2025-01-01');
    expect(timelinessWithin('2025-07-01', 2025, '2027-01-05')).toBe('2025-07-01');
  });
});

describe('property names that are also names of every JavaScript object (issue 20, item 9)', () => {
  // "__proto__" never reaches these rules (zod's record drops it): the module refuses it (module.test.ts).
  it.each(['hasOwnProperty', 'constructor', 'toString', 'valueOf', 'isPrototypeOf'])('properties.%s is refused by name, as any unknown property', (name) => {
    // JSON.parse makes "__proto__" an own member, as a request body would have it.
    const properties = JSON.parse(`{"lst": true, ${JSON.stringify(name)}: 5}`) as Record<string, unknown>;
    expect(errorsOf('services', { properties })).toEqual([{ pointer: `#/properties/${name}`, detail: expect.stringMatching(/^is not a property of Kontantuttag; allowed: lst, ticketsRequired, externalId$/) }]);
  });
});
