import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { osloDate } from '../../shared/dates.js';
import { buildOpenApi } from '../../shared/http/openapi.js';
import { HTTP_ROUTES, type HttpRoute } from '../../shared/local/routes.js';
import type { Stack } from '../../shared/local/stack.js';
import { RESOURCE_API, RESOURCES } from '../../shared/systems/kontantanalys/schema.js';
import { SYSTEM_NAMES } from '../../shared/systems/registry.js';
import { DEV_API_KEY, testStack } from '../helpers/stack.js';
import { arbitraryFromSchema, type JsonSchema } from '../helpers/schema-arbitrary.js';

/**
 * Issue 13: every route of the local stack, fed requests generated from the OpenAPI document's
 * request schemas and hostile mutations of them. Whatever arrives: never a 5xx; every 4xx is an
 * application/problem+json document; and a 4xx the server decided on its own (not a downstream's
 * refusal passed on) reached no downstream.
 */

/** Fixed, so a failure repeats; bounded, so the file runs in well under 40 s on two cores. */
const SEED = 1313;
// 40 per route: every route still meets each generator family; `npm test` must stay within 4 minutes on 2 cores.
const RUNS_PER_ROUTE = 40;

/** 4xx types that report a downstream's own refusal: the downstream was called by definition. */
const DOWNSTREAM_ANSWERS = new Set(['rejected-downstream', 'payment-failed']);

const doc = buildOpenApi() as { paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: JsonSchema }> } }>>; components: { schemas: Record<string, JsonSchema> } };
const components = doc.components.schemas;
const YEAR = osloDate(Date.now()).slice(0, 4);

interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

// ---- hostile pieces ------------------------------------------------------------------------------

const loneSurrogates = fc.constantFrom('repro\ud800', '\udfff', 'a\ud83db', '\ud800\ud800');
/** Names every JavaScript object has: as field or property names they passed validation, or answered 500 (issue 20, item 9). */
const PROTOTYPE_NAMES = ['__proto__', 'constructor', 'hasOwnProperty', 'toString', 'valueOf', 'isPrototypeOf'] as const;
/** Keys that look like another key, or like nothing: decomposed (NFD), or holding control or format characters (issue 20, item 13). */
const LOOKALIKE_KEYS = ['Ba\u0308r-\u00e5'.normalize('NFD'), 'ab\u0000c', 'ab\ufeffc', '\ufeffabc', 'ab\u200bc', 'ab\u200fc', '\u202eabc', 'ab\u0085c', 'ab\u00adc'] as const;
const lookalikeKeys = fc.constantFrom(...LOOKALIKE_KEYS);
const deepJson = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
/**
 * JSON.stringify of a 10,000-deep value can overflow the stack when fast-check calls it from deep in its
 * own generators: the body is then the same deep text, written out directly.
 */
const stringify = (v: unknown): string | undefined => {
  try {
    return JSON.stringify(v);
  } catch {
    return deepJson(10_000);
  }
};
const deepValue = fc.constantFrom(10, 1_000, 10_000).map((n) => JSON.parse(deepJson(n)) as unknown);
/** Values of the wrong kind, too big, or impossible for any field. */
const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  loneSurrogates,
  fc.integer({ min: 1_000, max: 20_000 }).map((n) => 'x'.repeat(n)),
  deepValue,
  fc.constantFrom(null, true, false, 0, -1, 1e308, -0, '', ' ', '0', 'true', [], {}, '\u0000', 'ERROR-1', '9'.repeat(40)),
  lookalikeKeys,
  fc.constantFrom(...PROTOTYPE_NAMES).map((name) => JSON.parse(`{${JSON.stringify(name)}: 5, "lst": true}`) as unknown),
  fc.jsonValue({ maxDepth: 3 }),
  fc.string({ unit: 'binary', maxLength: 30 }),
);

/** Path segments: encoded once (as callers should), doubly, not at all, malformed, over-long, or a lone surrogate's bytes. */
const wellFormedText = fc.string({ unit: 'binary', maxLength: 30 }).filter((s) => s.isWellFormed());
const segment = (valid: fc.Arbitrary<string>): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 4, arbitrary: valid.map(encodeURIComponent) },
    { weight: 2, arbitrary: wellFormedText.map(encodeURIComponent) },
    { weight: 1, arbitrary: valid.map((v) => encodeURIComponent(encodeURIComponent(v))) },
    { weight: 1, arbitrary: fc.constantFrom('a%25b%2Fc', '%', '%zz', 'a%E0%A4', '%ED%A0%80', '%F0%9F%98%80', '..', '.', '%2e%2e', 'x%00y', 'a+b', '%20') },
    { weight: 1, arbitrary: fc.constantFrom(1_000, 2_100, 3_000, 8_000).map((n) => 'k'.repeat(n)) },
  );

/** Header values fetch can send (ISO-8859-1, no CR/LF/NUL), up to well under Node's 16 KiB total. */
const headerText = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.integer({ min: 100, max: 8_000 }).map((n) => 'h'.repeat(n)),
  fc.constantFrom('', ' ', '0', '-1', '4568 ', '١٢', 'Ã¥', '99999999999999999999', 'null'),
).map((s) => s.replace(/[^\x20-\x7e\xa0-\xff]/g, '?'));

// ---- the seed documents' own examples, as starting points that can pass validation -----------------

const key = fc.oneof({ weight: 9, arbitrary: fc.stringMatching(/^[a-z0-9-]{4,20}$/) }, { weight: 1, arbitrary: lookalikeKeys });
const nifExample = (externalId: string, year = '2015') => ({
  amount: '450', comment: 'This was paid for club membership', externalId, isFamilyMember: 'true', isPaid: 'false', orgId: '7896', paidDate: `${year}-05-08`,
  paidToOrgId: '4568', paymentCategory: 'Club membership', paymentTypeId: 0, periodFrom: `${year}-05-08`, periodTo: `${year}-06-08`, personId: '8675682',
});
const KONTANTANALYS_EXAMPLES: Record<string, Record<string, unknown>> = {
  providers: { name: 'INGO Örebro, Adolfsbergsvägen', visitingAddress: 'Adolfsbergsvägen 4', postalCode: '702 27', postTown: 'ÖREBRO', x: 509886.4, y: 6568855.5 },
  services: { providerId: 1, servicePrincipalId: 2, serviceTypeId: 1, forms: ['Uttagsautomat'], active: true, properties: { lst: true } },
  templates: { principalOrganisationId: 3, serviceTypeId: 3, serviceFormId: 4, openHoursPerWeek: 40, closedWeeksPerYear: 4 },
  adaptations: { serviceId: 9, serviceFormId: 4, openHoursPerWeek: 20 },
  'fee-models': { supplierOrganisationId: 1, principalOrganisationId: 2, serviceTypeId: 1, serviceFormId: 3, minFlatFee: 0, minPercentageFee: 0, maxFlatFee: 25, maxPercentageFee: 1.5 },
};

function exampleBody(route: HttpRoute, resource: string): fc.Arbitrary<Record<string, unknown>> | undefined {
  switch (route.path) {
    case '/v1/cambio/payment-notices':
      return key.map((contactId) => ({ status: 'PAID', contactId, paymentType: 'CARD' }));
    case '/v1/nif/membership/payments':
    case '/v1/nif/corporate/payments':
      return key.map((k) => nifExample(k.slice(0, 25)));
    case '/v1/nif/payments':
      return key.map((k) => nifExample(k.slice(0, 25), YEAR));
    case '/v1/brp/sales':
      return key.map((externalId) => ({ externalId, businessUnitId: 3, customer: { personId: 4711 }, rows: [{ productId: 10, quantity: 2 }, { productId: 11, quantity: 1 }], bookings: [{ productId: 20, startDate: '2026-12-01', startTime: '18:00', resourceId: 5 }], payment: { amount: 65000, paymentMethodId: 1 } }));
    case '/v1/kontantanalys/{resource}/{externalId}': {
      const example = KONTANTANALYS_EXAMPLES[resource] ?? KONTANTANALYS_EXAMPLES.templates!;
      const type = RESOURCE_API[resource as keyof typeof RESOURCE_API]?.type ?? 'template';
      return fc.boolean().map((enveloped) => (enveloped ? { data: { type, attributes: example } } : example));
    }
    default:
      return undefined;
  }
}

/** The OpenAPI request schema for this route and, for Kontantanalys, this resource. */
function schemaBody(route: HttpRoute, resource: string): fc.Arbitrary<unknown> | undefined {
  if (route.path === '/v1/kontantanalys/{resource}/{externalId}') {
    const name = (RESOURCES as readonly string[]).includes(resource) ? resource : 'templates';
    return fc.oneof(arbitraryFromSchema({ $ref: `#/components/schemas/Kontantanalys_${name}` }, components), arbitraryFromSchema({ $ref: `#/components/schemas/Kontantanalys_${name}_envelope` }, components));
  }
  const schema = doc.paths[route.path]?.[route.method.toLowerCase()]?.requestBody?.content['application/json']?.schema;
  return schema ? arbitraryFromSchema(schema, components) : undefined;
}

/** One field of an object replaced by a hostile value, removed, or an unknown one added (at the top or inside `data`/`attributes`). */
function mutate(body: Record<string, unknown>): fc.Arbitrary<unknown> {
  const target = (b: Record<string, unknown>): Record<string, unknown> => {
    const data = b.data as Record<string, unknown> | undefined;
    return data && typeof data === 'object' && data.attributes && typeof data.attributes === 'object' ? (data.attributes as Record<string, unknown>) : b;
  };
  const fields = Object.keys(target(body));
  return fc.record({ field: fields.length ? fc.oneof(fc.constantFrom(...fields), fc.constantFrom('extra', 'externalId', 'data', 'properties', ...PROTOTYPE_NAMES)) : fc.constant('extra'), value: hostileValue, drop: fc.boolean(), top: fc.boolean() }).map(({ field, value, drop, top }) => {
    const copy = structuredClone(body);
    const where = top ? copy : target(copy);
    if (drop && field in where) delete where[field];
    else Object.defineProperty(where, field, { value, enumerable: true, writable: true, configurable: true });
    return copy;
  });
}

/** The body as text: JSON mostly, else broken, empty, huge, deep, or not JSON at all. */
function bodyText(value: fc.Arbitrary<unknown>): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 8, arbitrary: value.map((v) => stringify(v) ?? 'null') },
    { weight: 1, arbitrary: value.map((v) => (stringify(v) ?? '').slice(0, -1)) },
    { weight: 1, arbitrary: fc.constantFrom('', ' ', 'null', '[]', '"PAID"', '{"a":1,"a":2}', '\ufeff{}', '{"status":"PAID",', deepJson(10_000), deepJson(60_000), `{"data":${deepJson(10_000)}}`) },
    { weight: 1, arbitrary: value.map((v) => stringify({ ...(v && typeof v === 'object' ? v : {}), pad: 'x'.repeat(300 * 1024) }) as string) },
  );
}

function requestFor(route: HttpRoute): fc.Arbitrary<FuzzRequest> {
  const resourceArb = fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...RESOURCES) }, { weight: 1, arbitrary: fc.constantFrom('atms', 'Providers', '', '%70roviders') });
  const systemArb = fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...SYSTEM_NAMES) }, { weight: 1, arbitrary: fc.constantFrom('paypal', 'CAMBIO', 'run') });
  const keyArb = segment(fc.oneof(key, fc.constantFrom('4568:3248', '4568:idem:x', 'run:latest', 'templates:tpl-1', 'a%25b/c', '50%off')));
  return fc
    .record({
      resource: resourceArb,
      system: systemArb,
      key: keyArb,
      auth: fc.oneof({ weight: 9, arbitrary: fc.constant<Record<string, string>>({ 'x-api-key': DEV_API_KEY }) }, { weight: 1, arbitrary: fc.constantFrom<Record<string, string>>({}, { 'x-api-key': 'nope' }, { 'webhook-id': 'msg_1', 'webhook-timestamp': '0', 'webhook-signature': 'v1,AAAA' }) }),
      contentType: fc.oneof({ weight: 9, arbitrary: fc.constant('application/json') }, { weight: 1, arbitrary: fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=utf-8', 'application/problem+json', 'application/jsonx', '') }),
      clubId: fc.oneof({ weight: 6, arbitrary: fc.constantFrom('4568', '16235') }, { weight: 2, arbitrary: headerText }, { weight: 1, arbitrary: fc.constant(undefined) }),
      odd: fc.dictionary(fc.constantFrom('idempotency-key', 'patient', 'x-correlation-id', 'x-odd', 'accept', 'content-encoding'), headerText, { maxKeys: 3 }),
      wrongMethod: fc.integer({ min: 0, max: 19 }),
    })
    .chain((p) => {
      const path = route.path
        .replace('{resource}', p.resource === '%70roviders' ? p.resource : encodeURIComponent(p.resource))
        .replace('{system}', encodeURIComponent(p.system))
        .replace('{key}', p.key)
        .replace('{externalId}', p.key);
      const method = p.wrongMethod === 0 ? (route.method === 'GET' ? 'DELETE' : 'GET') : route.method;
      const headers: Record<string, string> = { ...p.odd, ...p.auth, ...(p.clubId !== undefined && route.path.includes('/nif/') ? { clubid: p.clubId } : {}) };
      if (method === 'GET') return fc.constant<FuzzRequest>({ method, path, headers });
      const example = exampleBody(route, p.resource);
      const generated = schemaBody(route, p.resource) ?? fc.jsonValue({ maxDepth: 2 });
      const value: fc.Arbitrary<unknown> = example
        ? fc.oneof({ weight: 2, arbitrary: example }, { weight: 3, arbitrary: example.chain(mutate) }, { weight: 3, arbitrary: generated })
        : generated;
      return bodyText(value).map((body) => ({ method, path, headers: { ...headers, ...(p.contentType ? { 'content-type': p.contentType } : {}) }, body }));
    });
}

// ---- the properties --------------------------------------------------------------------------------

describe('fuzz: every route, hostile input (issue 13)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await testStack({
      cambio: { ratePerSecond: 100_000 },
      nif: { ratePerSecond: 100_000 },
      brp: { ratePerSecond: 100_000 },
      kontantanalys: { ratePerSecond: 100_000, seededProviders: 50 },
      kontantanalysSyncIntervalMs: false,
    });
  });
  afterAll(async () => {
    await stack?.close();
  });

  /** Every call any sandbox has seen (tokens and reads included). */
  const downstreamCalls = () => {
    const { cambio, nif, brp, kontantanalys } = stack;
    return (
      cambio!.stats.noticeRequests + cambio!.stats.tokenRequests +
      nif!.stats.postRequests + nif!.stats.readRequests + nif!.stats.tokenRequests +
      brp!.stats.requests +
      kontantanalys!.stats.requests + kontantanalys!.stats.tokenRequests
    );
  };

  async function send(r: FuzzRequest): Promise<{ status: number; type: string | null; text: string }> {
    const res = await fetch(`${stack.url}${r.path}`, { method: r.method, headers: r.headers, ...(r.body !== undefined ? { body: r.body } : {}), signal: AbortSignal.timeout(20_000) });
    return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
  }

  it.each(HTTP_ROUTES.map((r) => [`${r.method} ${r.path}`, r] as const))('%s', async (_name, route) => {
    const seen = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(requestFor(route), async (request) => {
        // Accepted payments post synchronously here; anything still queued would call a downstream behind our back.
        expect(await stack.queue.idle(10_000), 'the retry queue drained before the next request').toBe(true);
        const before = downstreamCalls();
        const reply = await send(request);
        seen.set(reply.status, (seen.get(reply.status) ?? 0) + 1);
        const where = `${request.method} ${request.path.slice(0, 120)} → ${reply.status}: ${reply.text.slice(0, 300)}`;
        expect(reply.status, where).toBeLessThan(500);
        if (reply.status < 400) return;
        expect(reply.type, where).toBe('application/problem+json');
        const problem = JSON.parse(reply.text) as { status?: unknown; type?: unknown; errors?: { pointer?: unknown }[] };
        expect(problem.status, where).toBe(reply.status);
        expect(problem.type, where).toMatch(/^https:\/\/paybridge\.dev\/problems\/[a-z-]+$/);
        for (const e of problem.errors ?? []) expect(typeof e.pointer, where).toBe('string');
        const slug = String(problem.type).split('/').at(-1) as string;
        if (DOWNSTREAM_ANSWERS.has(slug)) expect(reply.status, where).toBe(422);
        else expect(downstreamCalls() - before, `${where}: a downstream was called for the server's own ${reply.status}`).toBe(0);
      }),
      { seed: SEED, numRuns: RUNS_PER_ROUTE, interruptAfterTimeLimit: 60_000, markInterruptAsFailure: true },
    );
    // The generator must reach past validation too, or the properties say little about the rest.
    expect([...seen.keys()].some((s) => s >= 400), `statuses seen: ${JSON.stringify([...seen])}`).toBe(true);
  }, 90_000);

  it('names every object has, and look-alike keys, are a 400 naming the field on every route that takes them; nothing reaches a downstream (issue 20, items 9 and 13)', async () => {
    const services = KONTANTANALYS_EXAMPLES.services as Record<string, unknown>;
    const withMember = (body: Record<string, unknown>, name: string, value: unknown) => `${JSON.stringify(body).slice(0, -1)},${JSON.stringify(name)}:${JSON.stringify(value)}}`;
    const cases: { what: string; path: string; headers?: Record<string, string>; method?: string; body: string; pointer: RegExp }[] = [];
    for (const name of PROTOTYPE_NAMES) {
      cases.push({ what: `NIF field ${name}`, path: '/v1/nif/membership/payments', headers: { clubid: '4568' }, body: withMember(nifExample(`pr-${name}`.slice(0, 25)), name, name === '__proto__' ? { amount: '1' } : 1), pointer: new RegExp(`^#/${name}$`) });
      cases.push({ what: `NIF gen 2 field ${name}`, path: '/v1/nif/payments', body: withMember(nifExample(`pr2-${name}`.slice(0, 25), YEAR), name, 1), pointer: new RegExp(`^#/${name}$`) });
      cases.push({ what: `Kontantanalys property ${name}`, method: 'PUT', path: `/v1/kontantanalys/services/proto-${name.replace(/_/g, 'u')}`, body: JSON.stringify({ ...services, properties: 'PROPS' }).replace('"PROPS"', `{"lst":true,${JSON.stringify(name)}:5}`), pointer: new RegExp(`^#/properties/${name}$`) });
      cases.push({ what: `Cambio field ${name}`, path: '/v1/cambio/payment-notices', body: withMember({ status: 'PAID', contactId: `proto-${name}`, paymentType: 'CARD' }, name, 1), pointer: new RegExp(`^#/${name}$`) });
    }
    for (const k of LOOKALIKE_KEYS) {
      cases.push({ what: `Cambio contactId ${JSON.stringify(k)}`, path: '/v1/cambio/payment-notices', body: JSON.stringify({ status: 'PAID', contactId: k, paymentType: 'CARD' }), pointer: /^#\/contactId$/ });
      // NIF trims an externalId (as it always has); JavaScript counts U+FEFF as white space, so a leading one is
      // trimmed away and the key is the visible one. Cambio refuses surrounding white space instead.
      if (k.trim() !== k) continue;
      cases.push({ what: `NIF externalId ${JSON.stringify(k)}`, path: '/v1/nif/corporate/payments', headers: { clubid: '16235' }, body: JSON.stringify(nifExample(k)), pointer: /^#\/externalId$/ });
      cases.push({ what: `NIF gen 2 externalId ${JSON.stringify(k)}`, path: '/v1/nif/payments', body: JSON.stringify(nifExample(k, YEAR)), pointer: /^#\/externalId$/ });
    }
    for (const c of cases) {
      const before = downstreamCalls();
      const reply = await send({ method: c.method ?? 'POST', path: c.path, headers: { 'x-api-key': DEV_API_KEY, 'content-type': 'application/json', ...c.headers }, body: c.body });
      expect(reply.status, `${c.what}: ${reply.text.slice(0, 300)}`).toBe(400);
      const problem = JSON.parse(reply.text) as { errors?: { pointer: string }[] };
      expect(problem.errors?.some((e) => c.pointer.test(e.pointer)), `${c.what}: ${reply.text.slice(0, 300)}`).toBe(true);
      expect(downstreamCalls() - before, c.what).toBe(0);
    }
  }, 60_000);
});
