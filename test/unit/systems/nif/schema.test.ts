import { describe, expect, it } from 'vitest';
import { ILL_FORMED_DETAIL } from '../../../../shared/core/keys.js';
import { kronorToOre, oreToKronor, parseNifPayment, toWire, type NifVariant } from '../../../../shared/systems/nif/schema.js';

const TODAY = '2026-11-22';
const errorsOf = (body: unknown, variant: NifVariant = 'membership') => {
  const r = parseNifPayment(body, variant, TODAY);
  return r.ok ? [] : r.errors;
};

/** Seed 003's External Membership request example, verbatim. */
const MEMBERSHIP_EXAMPLE = { amount: '450', comment: 'This was paid for club membership', externalId: '3248', isFamilyMember: 'true', isPaid: 'false', orgId: '7896', paidDate: '2015-05-08', paidToOrgId: '4568', paymentCategory: 'Club membership', paymentTypeId: 0, periodFrom: '2015-05-08', periodTo: '2015-06-08', personId: '8675682' };
/** Seed 003's Corporate Sports request example, verbatim. */
const CORPORATE_EXAMPLE = { amount: 777.0, comment: 'test payment', externalId: 'llqgJLRvGNU2uhYrpMQA', isFamilyMember: false, isPaid: true, orgId: 16235, paidDate: '2020-12-02', paidToOrgId: 16235, paymentCategory: 'test payment Category', paymentTypeId: 0, periodFrom: '2020-07-01', periodTo: '2020-12-31', personId: 9283002 };
/** Seed 004's example with this year's dates (PeriodFrom must be in the current year). */
const GEN2_EXAMPLE = { ...MEMBERSHIP_EXAMPLE, paidDate: '2026-05-08', periodFrom: '2026-05-08', periodTo: '2026-06-08' };

describe('NIF payment rules (seeds 003 and 004)', () => {
  it('accepts the documents\' own examples, strings and all', () => {
    const m = parseNifPayment(MEMBERSHIP_EXAMPLE, 'membership', TODAY);
    expect(m).toMatchObject({ ok: true, value: { amountOre: 45_000, isFamilyMember: true, isPaid: false, orgId: 7896, personId: 8675682, externalId: '3248' } });
    expect(parseNifPayment(CORPORATE_EXAMPLE, 'corporate', TODAY)).toMatchObject({ ok: true, value: { amountOre: 77_700, orgId: 16235 } });
    expect(parseNifPayment(GEN2_EXAMPLE, 'gen2', TODAY)).toMatchObject({ ok: true });
  });

  it('accepts field names with a capital first letter, and refuses a field given twice', () => {
    const capital = Object.fromEntries(Object.entries(MEMBERSHIP_EXAMPLE).map(([k, v]) => [k[0]!.toUpperCase() + k.slice(1), v]));
    expect(parseNifPayment(capital, 'membership', TODAY).ok).toBe(true);
    expect(errorsOf({ ...MEMBERSHIP_EXAMPLE, Amount: '10' })).toEqual([{ pointer: '#/Amount', detail: 'is given twice (also as "amount")' }]);
    expect(errorsOf({ ...MEMBERSHIP_EXAMPLE, AMOUNT: '10' })).toEqual([{ pointer: '#/AMOUNT', detail: 'is not a field of this request' }]);
  });

  it.each<[string, Record<string, unknown>, NifVariant, string, string]>([
    ['amount required', { amount: undefined }, 'membership', '#/amount', 'is required'],
    ['amount negative', { amount: -5 }, 'membership', '#/amount', 'must be an amount in kronor, not negative, with at most two decimals (e.g. 450 or "450.50")'],
    ['amount "abc"', { amount: 'abc' }, 'membership', '#/amount', 'must be an amount in kronor, not negative, with at most two decimals (e.g. 450 or "450.50")'],
    ['amount three decimals', { amount: '1.005' }, 'membership', '#/amount', 'must be an amount in kronor, not negative, with at most two decimals (e.g. 450 or "450.50")'],
    ['amount as a boolean', { amount: true }, 'membership', '#/amount', 'must be an amount in kronor, not negative, with at most two decimals (e.g. 450 or "450.50")'],
    ['comment over 200', { comment: 'x'.repeat(201) }, 'membership', '#/comment', 'must be at most 200 characters'],
    ['externalId over 25', { externalId: 'x'.repeat(26) }, 'membership', '#/externalId', 'must be at most 25 characters'],
    ['externalId required in gen2', { externalId: undefined }, 'gen2', '#/externalId', 'is required'],
    // Issue 13: a lone surrogate was posted to NIF, then the status URL could not be built.
    ['externalId with a lone surrogate', { externalId: 'repro\ud800' }, 'membership', '#/externalId', ILL_FORMED_DETAIL],
    ['externalId with a lone surrogate (corporate)', { externalId: '\udfff' }, 'corporate', '#/externalId', ILL_FORMED_DETAIL],
    ['externalId with a lone surrogate (gen2)', { externalId: 'x\ud83d' }, 'gen2', '#/externalId', ILL_FORMED_DETAIL],
    ['paymentCategory over 127', { paymentCategory: 'x'.repeat(128) }, 'membership', '#/paymentCategory', 'must be at most 127 characters'],
    ['paymentCategory required', { paymentCategory: undefined }, 'membership', '#/paymentCategory', 'is required'],
    ['isPaid required (membership)', { isPaid: undefined }, 'membership', '#/isPaid', 'is required'],
    ['isPaid not a boolean', { isPaid: 'yes' }, 'membership', '#/isPaid', 'must be true or false (or "true"/"false")'],
    ['isFamilyMember not a boolean', { isFamilyMember: 1 }, 'membership', '#/isFamilyMember', 'must be true or false'],
    ['orgId not a number', { orgId: 'club' }, 'membership', '#/orgId', 'must be a positive whole number (the club, the branch for type 2, or the allidrett group)'],
    ['personId zero', { personId: 0 }, 'membership', '#/personId', 'must be a positive whole number (an existing NIF person id)'],
    ['paidDate format', { paidDate: '08.05.2015' }, 'membership', '#/paidDate', 'must be a date as YYYY-MM-DD (NIF 3007)'],
    ['paidDate not a day', { paidDate: '2015-02-30' }, 'membership', '#/paidDate', 'is not a calendar date (NIF 3007)'],
    ['periodFrom format', { periodFrom: '2015-5-8' }, 'membership', '#/periodFrom', 'must be a date as YYYY-MM-DD (NIF 3006)'],
    ['period across years (3000)', { periodFrom: '2015-12-01', periodTo: '2016-01-31' }, 'membership', '#/periodTo', 'must be in the same year as periodFrom (NIF 3000)'],
    ['periodTo before periodFrom', { periodFrom: '2015-06-08', periodTo: '2015-05-08' }, 'membership', '#/periodTo', 'must be after periodFrom (NIF 3006)'],
    ['periodTo equal to periodFrom', { periodFrom: '2015-06-08', periodTo: '2015-06-08' }, 'membership', '#/periodTo', 'must be after periodFrom (NIF 3006)'],
    ['payment type 5 (membership)', { paymentTypeId: 5 }, 'membership', '#/paymentTypeId', 'must be one of 0 (membership), 1 (license), 2 (training fee), 3 (registration fee), 4 (other) (NIF 3009)'],
    ['payment type 1 (corporate)', { paymentTypeId: 1 }, 'corporate', '#/paymentTypeId', 'must be one of 0 (membership), 2 (group membership fee) (NIF 3009)'],
    ['payment type 3 (gen2)', { paymentTypeId: 3, paidDate: '2026-05-08', periodFrom: '2026-05-08', periodTo: '2026-06-08' }, 'gen2', '#/paymentTypeId', 'must be one of 0 (club membership), 2 (branch training fee) (NIF 3009)'],
    ['gen2 period not this year', { periodFrom: '2025-05-08', periodTo: '2025-06-08' }, 'gen2', '#/periodFrom', 'must be in the current year, 2026 (NIF 3010)'],
    ['unknown field', { amountOre: 100 }, 'membership', '#/amountOre', 'is not a field of this request'],
  ])('%s', (_name, change, variant, pointer, detail) => {
    const base = variant === 'corporate' ? CORPORATE_EXAMPLE : variant === 'gen2' ? GEN2_EXAMPLE : MEMBERSHIP_EXAMPLE;
    const body: Record<string, unknown> = { ...base, ...change };
    for (const [k, v] of Object.entries(change)) if (v === undefined) delete body[k];
    const errors = errorsOf(body, variant);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.pointer).toBe(pointer);
    expect(errors[0]?.detail).toContain(detail);
  });

  it('passing cases at the edges of each rule', () => {
    const ok = (change: Record<string, unknown>, variant: NifVariant = 'membership') => {
      const base = variant === 'gen2' ? GEN2_EXAMPLE : variant === 'corporate' ? CORPORATE_EXAMPLE : MEMBERSHIP_EXAMPLE;
      expect(errorsOf({ ...base, ...change }, variant)).toEqual([]);
    };
    ok({ comment: 'x'.repeat(200), externalId: 'x'.repeat(25), paymentCategory: 'x'.repeat(127) });
    ok({ amount: '0' });
    ok({ amount: '450,50' });
    ok({ amount: 99.99 });
    ok({ periodFrom: '2015-01-01', periodTo: '2015-12-31' });
    for (const t of [0, 1, 2, 3, 4, '4']) ok({ paymentTypeId: t });
    ok({ paymentTypeId: 2, orgId: 555 }, 'corporate');
    ok({ isPaid: undefined }, 'corporate');
    ok({ externalId: undefined });
    ok({ paymentTypeId: '2' }, 'gen2');
  });
});

describe('money: kronor at the edge, integer øre inside', () => {
  it.each([
    ['450', 45_000],
    [450, 45_000],
    [777.0, 77_700],
    ['0.1', 10],
    ['0.10', 10],
    [0.29, 29],
    ['1234.56', 123_456],
    ['1,5', 150],
    [1e21, undefined],
    ['-1', undefined],
    ['1.234', undefined],
    ['', undefined],
    [Number.NaN, undefined],
    [null, undefined],
  ])('%j → %j øre', (input, ore) => {
    expect(kronorToOre(input)).toBe(ore);
  });
  it('sends kronor exactly as the document shows them', () => {
    expect(oreToKronor(45_000)).toBe(450);
    expect(oreToKronor(29)).toBe(0.29);
    expect(JSON.stringify({ a: oreToKronor(123_456) })).toBe('{"a":1234.56}');
    const parsed = parseNifPayment(CORPORATE_EXAMPLE, 'corporate', TODAY);
    if (!parsed.ok) throw new Error('example must parse');
    expect(toWire(parsed.value, 'corporate')).toMatchObject({ amount: 777, isPaid: true, orgId: 16235, personId: 9283002 });
  });
});

describe('field names that are also names of every JavaScript object (issue 20, item 9)', () => {
  it('"__proto__" is an unknown field: the fields inside it are neither taken nor hide a field given twice', () => {
    const { amount: _a, personId: _p, ...rest } = MEMBERSHIP_EXAMPLE;
    // As it arrives: JSON.parse makes "__proto__" an own member holding an object.
    const body = JSON.parse(JSON.stringify({ ...rest, __proto__x: { amount: '450', personId: '8675682' } }).replace('__proto__x', '__proto__')) as unknown;
    const errors = errorsOf(body);
    expect(errors).toContainEqual({ pointer: '#/__proto__', detail: 'is not a field of this request' });
    expect(errors).toContainEqual({ pointer: '#/amount', detail: 'is required' });
    const twice = JSON.parse(JSON.stringify({ ...MEMBERSHIP_EXAMPLE, __proto__x: { amount: '1' } }).replace('__proto__x', '__proto__')) as unknown;
    expect(errorsOf(twice)).toEqual([{ pointer: '#/__proto__', detail: 'is not a field of this request' }]);
  });

  it.each(['constructor', 'hasOwnProperty', 'toString'])('"%s" is an unknown field, refused by name', (name) => {
    expect(errorsOf({ ...MEMBERSHIP_EXAMPLE, [name]: 1 })).toEqual([{ pointer: `#/${name}`, detail: 'is not a field of this request' }]);
  });
});
