import { performance } from 'node:perf_hooks';
import { Agent } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../../shared/config.js';
import { ProblemError, type FieldError } from '../../../../shared/http/problem.js';
import { kontantanalysModule } from '../../../../shared/systems/kontantanalys/index.js';

const NOW = Date.parse('2026-11-22T10:00:00Z');
const dispatcher = new Agent();
const module = kontantanalysModule(parseConfig({}), dispatcher, () => NOW);
afterAll(() => dispatcher.close());

const template = { principalOrganisationId: 3, serviceTypeId: 3, serviceFormId: 4, openHoursPerWeek: 40 };
const service = { providerId: 1, servicePrincipalId: 2, serviceTypeId: 1, forms: ['Uttagsautomat'], active: true, properties: { lst: true } };

function parse(resource: string, body: unknown, externalId = 'ext-1') {
  return module.parse({ body, headers: {}, pathParameters: { resource, externalId } });
}

function errorsOf(resource: string, body: unknown, externalId?: string): FieldError[] {
  try {
    parse(resource, body, externalId);
    return [];
  } catch (err) {
    expect(err).toBeInstanceOf(ProblemError);
    expect((err as ProblemError).status).toBe(400);
    return (err as ProblemError).errors ?? [];
  }
}

describe('Kontantanalys envelope (seed 001: envelope = {"data": provider}, provider = {type, attributes})', () => {
  it('accepts bare attributes and the envelope with the resource\'s type, with or without an id', () => {
    expect(parse('templates', template).request).toMatchObject({ attributes: template });
    expect(parse('templates', { data: { type: 'template', attributes: template } }).request).toMatchObject({ attributes: template });
    expect(parse('fee-models', { data: { type: 'feeModel', id: 7, attributes: { supplierOrganisationId: 1, principalOrganisationId: 2, serviceTypeId: 1, serviceFormId: 3, minFlatFee: 0, minPercentageFee: 0, maxFlatFee: 25, maxPercentageFee: 1.5 } } }).key).toBe('fee-models:ext-1');
  });

  it.each<[string, unknown, FieldError[]]>([
    ['data.type of another resource', { data: { type: 'provider', attributes: template } }, [{ pointer: '#/data/type', detail: expect.stringContaining('must be "template"') }]],
    ['data.type not a string', { data: { type: 42, attributes: template } }, [{ pointer: '#/data/type', detail: expect.stringContaining('must be "template"') }]],
    ['data.type missing', { data: { attributes: template } }, [{ pointer: '#/data/type', detail: 'is required' }]],
    ['an unknown envelope member', { data: { type: 'template', attributes: template }, meta: { x: 1 } }, [{ pointer: '#/meta', detail: 'is not a field of this request' }]],
    ['an unknown member of data', { data: { type: 'template', attributes: template, relationships: {} } }, [{ pointer: '#/data/relationships', detail: 'is not a field of this request' }]],
    ['data not an object', { data: 'template' }, [{ pointer: '#/data', detail: expect.stringContaining('must be an object') }]],
    ['attributes missing', { data: { type: 'template' } }, [{ pointer: '#/data/attributes', detail: 'is required' }]],
    ['an id that is not a whole number', { data: { type: 'template', id: 'x', attributes: template } }, [{ pointer: '#/data/id', detail: expect.any(String) }]],
    ['a bad attribute inside', { data: { type: 'template', attributes: { ...template, openHoursPerWeek: 200 } } }, [{ pointer: '#/data/attributes/openHoursPerWeek', detail: 'must be from 0 to 168 hours' }]],
  ])('%s: 400 naming the member', (_name, body, expected) => {
    expect(errorsOf('templates', body)).toEqual(expected);
  });

  it('a 10,000-deep unknown member is refused quickly, without walking into it', () => {
    const deep = `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`;
    const body = JSON.parse(`{"data":{"type":"template","attributes":${JSON.stringify(template)},"x":${deep}},"y":${deep}}`);
    const started = performance.now();
    const errors = errorsOf('templates', body);
    expect(performance.now() - started).toBeLessThan(500);
    expect(errors.map((e) => e.pointer).sort()).toEqual(['#/data/x', '#/y']);
    const deepArrays = JSON.parse(`{"data":{"type":"template","attributes":{"principalOrganisationId":3,"serviceTypeId":3,"serviceFormId":4,"openHoursPerWeek":${'['.repeat(10_000)}${']'.repeat(10_000)}}}}`);
    expect(errorsOf('templates', deepArrays)).toEqual([{ pointer: '#/data/attributes/openHoursPerWeek', detail: expect.any(String) }]);
  });
});

describe('a service\'s externalId lives in properties (seed 001: "Alla | externalId | string")', () => {
  it('properties.externalId is a property of every service type; the stored request leaves it to the sender', () => {
    for (const [serviceTypeId, forms] of [[1, ['Uttagsautomat']], [4, ['Paketombud']], [7, ['Dagligvaror']]] as const) {
      const parsed = parse('services', { ...service, serviceTypeId, forms, properties: { externalId: 'ext-1' } });
      expect(parsed.request).toMatchObject({ externalId: 'ext-1' });
      expect((parsed.request as { attributes: Record<string, unknown> }).attributes.properties).toBeUndefined();
    }
    const both = parse('services', { ...service, properties: { lst: true, externalId: 'ext-1' } });
    expect((both.request as { attributes: Record<string, unknown> }).attributes.properties).toEqual({ lst: true });
  });

  it('a properties.externalId other than the path\'s, or not a string, is refused', () => {
    expect(errorsOf('services', { ...service, properties: { externalId: 'other' } })).toEqual([{ pointer: '#/properties/externalId', detail: expect.stringContaining('must be the externalId in the path ("ext-1")') }]);
    expect(errorsOf('services', { data: { type: 'service', attributes: { ...service, properties: { externalId: 5 } } } })).toEqual([{ pointer: '#/data/attributes/properties/externalId', detail: 'must be a string' }]);
  });

  it('a top-level externalId attribute is refused saying it belongs in properties', () => {
    expect(errorsOf('services', { ...service, externalId: 'ext-1' })).toEqual([{ pointer: '#/externalId', detail: expect.stringContaining('Kontantanalys keeps it in properties') }]);
  });
});

describe('a member named "__proto__" (issue 20, item 9)', () => {
  it('in properties is refused by name, bare or enveloped, where it was dropped without a word', () => {
    const properties = JSON.parse('{"lst": true, "__proto__": {"lst": false}}') as unknown;
    expect(errorsOf('services', { ...service, properties })).toEqual([{ pointer: '#/properties/__proto__', detail: expect.stringMatching(/^is not a property of Kontantuttag; allowed: lst, ticketsRequired, externalId$/) }]);
    expect(errorsOf('services', { data: { type: 'service', attributes: { ...service, properties } } })).toEqual([{ pointer: '#/data/attributes/properties/__proto__', detail: expect.stringMatching(/^is not a property of Kontantuttag; allowed: lst, ticketsRequired, externalId$/) }]);
  });

  it('"constructor" in properties is a 400 naming it, not a 500', () => {
    expect(errorsOf('services', { ...service, properties: { lst: true, constructor: 5 } })).toEqual([{ pointer: '#/properties/constructor', detail: expect.stringMatching(/^is not a property of Kontantuttag; allowed: lst, ticketsRequired, externalId$/) }]);
  });
});
