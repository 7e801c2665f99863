import fc from 'fast-check';

/** The JSON Schema 2020-12 subset zod's toJSONSchema emits for our request bodies (shared/http/openapi.ts). */
export type JsonSchema = {
  $ref?: string;
  const?: unknown;
  enum?: unknown[];
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  minItems?: number;
  maxItems?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
};

/** Keeps generated values small: the point is shapes and edges, not volume (volume has its own mutations). */
const MAX_STRING = 40;
const MAX_ITEMS = 4;

function stringOf(s: JsonSchema): fc.Arbitrary<string> {
  const min = s.minLength ?? 0;
  const max = Math.max(min, Math.min(s.maxLength ?? MAX_STRING, MAX_STRING));
  const edges = fc.constantFrom(...[s.minLength !== undefined ? 'x'.repeat(s.minLength) : '', s.maxLength !== undefined ? 'x'.repeat(s.maxLength) : 'x', s.maxLength !== undefined ? 'x'.repeat(s.maxLength + 1) : 'y']);
  if (s.pattern) {
    let matching: fc.Arbitrary<string>;
    try {
      matching = fc.stringMatching(new RegExp(s.pattern)).map((v) => v.slice(0, max));
    } catch {
      matching = fc.string({ minLength: min, maxLength: max });
    }
    return fc.oneof({ weight: 4, arbitrary: matching }, { weight: 1, arbitrary: fc.string({ maxLength: max }) }, { weight: 1, arbitrary: edges });
  }
  return fc.oneof({ weight: 4, arbitrary: fc.string({ minLength: min, maxLength: max, unit: 'binary' }) }, { weight: 1, arbitrary: edges });
}

function numberOf(s: JsonSchema, integer: boolean): fc.Arbitrary<number> {
  const lo = s.exclusiveMinimum !== undefined ? s.exclusiveMinimum + (integer ? 1 : Number.EPSILON) : (s.minimum ?? -1_000_000);
  const hi = s.exclusiveMaximum !== undefined ? s.exclusiveMaximum - (integer ? 1 : Number.EPSILON) : (s.maximum ?? 1_000_000);
  // Mostly near the low end, where real ids and amounts live; sometimes the edges and just past them.
  const near = Math.min(hi, Math.max(lo, 0) + 100_000);
  const base = integer ? fc.integer({ min: Math.max(lo, Number.MIN_SAFE_INTEGER), max: near }) : fc.double({ min: lo, max: near, noNaN: true, noDefaultInfinity: true });
  return fc.oneof({ weight: 5, arbitrary: base }, { weight: 1, arbitrary: fc.constantFrom(lo, hi, lo - 1, hi + 1, 0, 1.5) });
}

/** An arbitrary of values the schema describes, biased towards valid ones and its edges. */
export function arbitraryFromSchema(schema: JsonSchema, components: Record<string, JsonSchema>, depth = 0): fc.Arbitrary<unknown> {
  if (schema.$ref) {
    const target = components[schema.$ref.replace('#/components/schemas/', '')];
    if (!target) throw new Error(`unresolved ${schema.$ref}`);
    return arbitraryFromSchema(target, components, depth + 1);
  }
  if ('const' in schema) return fc.constant(schema.const);
  if (schema.enum) return fc.constantFrom(...schema.enum);
  const options = schema.anyOf ?? schema.oneOf;
  if (options) return fc.oneof(...options.map((o) => arbitraryFromSchema(o, components, depth + 1)));
  const types = Array.isArray(schema.type) ? schema.type : schema.type ? [schema.type] : [];
  if (types.length === 0) return fc.jsonValue({ maxDepth: 2 });
  return fc.oneof(
    ...types.map((type): fc.Arbitrary<unknown> => {
      switch (type) {
        case 'string':
          return stringOf(schema);
        case 'integer':
          return numberOf(schema, true);
        case 'number':
          return numberOf(schema, false);
        case 'boolean':
          return fc.boolean();
        case 'null':
          return fc.constant(null);
        case 'array':
          return fc.array(schema.items ? arbitraryFromSchema(schema.items, components, depth + 1) : fc.jsonValue({ maxDepth: 1 }), {
            minLength: schema.minItems ?? 0,
            maxLength: Math.max(schema.minItems ?? 0, Math.min(schema.maxItems ?? MAX_ITEMS, MAX_ITEMS)),
          });
        case 'object': {
          if (schema.properties) {
            const model = Object.fromEntries(Object.entries(schema.properties).map(([k, v]) => [k, arbitraryFromSchema(v, components, depth + 1)]));
            return fc.record(model, { requiredKeys: (schema.required ?? []).filter((k) => k in model) });
          }
          return fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 });
        }
        default:
          throw new Error(`schema type ${type} is not generated`);
      }
    }),
  );
}
