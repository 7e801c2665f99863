import { stockholmDate } from '../../dates.js';
import type { Outcome, PaymentRecord } from '../../core/types.js';
import { sharedDispatcher } from '../http.js';
import { fieldErrors, validationProblem, type FieldError } from '../../http/problem.js';
import { moduleFactory, requireConfig, type AttemptContext, type InboundRequest, type ReconcileResult, type SystemModule } from '../types.js';
import { KontantanalysClient, type ListCursor, type Remote } from './client.js';
import { findMatch, type Match, type ProviderLike } from './matching.js';
import { KONTANTANALYS, kontantanalysDescription, kontantanalysKey, RESOURCES, type Resource } from './describe.js';
import { crossFieldErrors, envelopeSchema, externalIdSchema, RESOURCE_API, schemas, timelinessWithin, unknownPropertyDetail } from './schema.js';

export { KONTANTANALYS, kontantanalysKey } from './describe.js';

export interface KontantanalysRequest {
  resource: Resource;
  externalId: string;
  attributes: Record<string, unknown>;
}

export interface KontantanalysCheckpoints {
  remoteId?: number;
  createRequested?: boolean;
  /** Epoch ms when a create's ambiguous answer came back: a listing begun after it shows whether the create landed. */
  createAnsweredAt?: number;
  match?: Match;
  /** When the integrator last confirmed the data (any PUT, changed or not): drives timelinessDate. */
  confirmedAt?: string;
  /** The timelinessDate last sent for a service (YYYY-MM-DD). */
  timelinessDate?: string;
}

/** The externalId a registered service carries, in its properties (seed 001). */
export function serviceExternalId(service: Remote): unknown {
  const props = service.attributes.properties;
  return props && typeof props === 'object' ? (props as Record<string, unknown>).externalId : undefined;
}

/**
 * seed 001 lists externalId among a service's properties ("Alla | externalId | string"), not as an
 * attribute: a top-level one is refused saying where it goes, rather than as an unknown field.
 */
function misplacedExternalId(resource: Resource, prefix: string, e: FieldError): FieldError {
  if (resource !== 'services' || e.pointer !== `${prefix}externalId`) return e;
  return { pointer: e.pointer, detail: 'is not an attribute of a service: Kontantanalys keeps it in properties (seed 001: "Alla | externalId | string"), where paybridge puts the path\'s externalId; leave it out' };
}

/**
 * A service's `properties.externalId` is always the path's (checked in parse) and added when sent:
 * kept out of the stored attributes, so giving it or not is the same payload and no update.
 */
function withoutOwnExternalId(attributes: Record<string, unknown>): Record<string, unknown> {
  const props = attributes.properties as Record<string, unknown> | undefined;
  if (!props || !Object.hasOwn(props, 'externalId')) return attributes;
  const { externalId: _own, ...rest } = props;
  const { properties: _props, ...others } = attributes;
  return Object.keys(rest).length > 0 ? { ...others, properties: rest } : others;
}

/**
 * The attributes as sent: a service carries our externalId in `properties.externalId` (seed 001 keeps
 * it there for every service type, for exactly this) and,
 * unless the integrator gave one, the timelinessDate the scheduled run derived from its last
 * confirmation. Derived data lives in the checkpoints, so it never changes the integrator's payload.
 */
function wire(r: KontantanalysRequest, cp: KontantanalysCheckpoints, today: string): Record<string, unknown> {
  if (r.resource !== 'services') return r.attributes;
  const properties = { ...(r.attributes.properties as Record<string, unknown> | undefined), externalId: r.externalId };
  // A date derived last year may be sent this year (a retry, a changed body on 2 January): clamped again.
  const derived = cp.timelinessDate ? { timelinessDate: timelinessWithin(cp.timelinessDate, r.attributes.year, today) } : {};
  return { ...derived, ...r.attributes, properties };
}

export const kontantanalysModule = moduleFactory(KONTANTANALYS, (config, dispatcher = sharedDispatcher(), clock = Date.now): SystemModule => {
  let client: KontantanalysClient | undefined;
  /** The registered providers, and when the listing that read them began. */
  let providers: { at: number; list: Remote[] } | undefined;
  const settings = () => config.system(KONTANTANALYS);
  /** Listings cut short by a failed page (429, outage), per API path: the next attempt resumes them. */
  const partial = new Map<string, { startedAt: number; cursor: ListCursor }>();
  const getClient = () => {
    if (client) return client;
    const c = settings();
    requireConfig(c, ['KONTANTANALYS_BASE_URL', 'KONTANTANALYS_USERNAME', 'KONTANTANALYS_PASSWORD'] as const, 'Kontantanalys');
    client = new KontantanalysClient(
      { baseUrl: c.KONTANTANALYS_BASE_URL as string, username: c.KONTANTANALYS_USERNAME as string, password: c.KONTANTANALYS_PASSWORD as string },
      dispatcher,
      clock,
    );
    return client;
  };
  /** Validation needs the permission flag; an invalid configuration holds the payment later, so validate as without it. */
  const extendedPermission = () => {
    try {
      return settings().KONTANTANALYS_EXTENDED_PERMISSION;
    } catch {
      return false;
    }
  };

  /**
   * Every object at `path`, all pages. A listing cut short is resumed by the next call if it began
   * at or after `since`: its pages then still show everything that existed at `since`.
   */
  async function listAll(api: KontantanalysClient, path: string, since: number): Promise<{ ok: true; list: Remote[]; startedAt: number } | { ok: false; outcome: Outcome }> {
    const held = partial.get(path);
    const resume = held && held.startedAt >= since ? held : undefined;
    const startedAt = resume?.startedAt ?? clock();
    const r = await api.list(path, resume?.cursor);
    if (!r.ok) {
      if (r.cursor) partial.set(path, { startedAt, cursor: r.cursor });
      else partial.delete(path);
      return r;
    }
    partial.delete(path);
    return { ok: true, list: r.value, startedAt };
  }

  /** All registered providers, cached for five minutes (or newer than `since`): matching reads ~17,000 of them. */
  async function registeredProviders(api: KontantanalysClient, since = clock() - 300_000): Promise<{ ok: true; list: Remote[] } | { ok: false; outcome: Outcome }> {
    if (providers && providers.at >= since) return { ok: true, list: providers.list };
    const r = await listAll(api, RESOURCE_API.providers.path, since);
    if (!r.ok) return r;
    providers = { at: r.startedAt, list: r.list };
    return { ok: true, list: r.list };
  }

  /**
   * Whether an earlier create of this object took effect: providers by matching the register, services
   * by our externalId. Templates, adaptations and fee models carry nothing to look them up by.
   */
  async function findCreated(r: KontantanalysRequest, api: KontantanalysClient, since: number): Promise<{ found?: Remote } | { unknowable: string } | { inconclusive: string }> {
    const resource = RESOURCE_API[r.resource];
    if (r.resource === 'providers') {
      const known = await registeredProviders(api, since);
      if (!known.ok) return { inconclusive: known.outcome.type };
      const m = findMatch(r.attributes as unknown as ProviderLike, known.list as { id: number; attributes: Partial<ProviderLike> }[], settings().KONTANTANALYS_MATCH_DISTANCE_M);
      const found = m ? known.list.find((p) => p.id === m.remoteId) : undefined;
      return found ? { found } : {};
    }
    if (r.resource === 'services') {
      const all = await listAll(api, resource.path, since);
      if (!all.ok) return { inconclusive: all.outcome.type };
      const found = all.list.find((s) => serviceExternalId(s) === r.externalId);
      return found ? { found } : {};
    }
    return { unknowable: `a ${resource.type} may have been created, and ${resource.type}s carry no externalId to find it by: check Kontantanalys before resolving` };
  }

  /**
   * Only a listing begun after the ambiguous answer can tell whether the create landed (a worker that
   * died mid-create left no answer time: then a listing begun after the record was last written).
   */
  const createdSince = (record: PaymentRecord) => (record.checkpoints as KontantanalysCheckpoints).createAnsweredAt ?? Date.parse(record.updatedAt);

  async function create(r: KontantanalysRequest, ctx: AttemptContext, api: KontantanalysClient): Promise<Outcome> {
    const resource = RESOURCE_API[r.resource];
    if ((ctx.record.checkpoints as KontantanalysCheckpoints).createRequested) {
      // An earlier create may have reached the register (issue 10): look it up before creating again.
      const earlier = await findCreated(r, api, createdSince(ctx.record));
      if ('unknowable' in earlier) return { type: 'ambiguous', message: earlier.unknowable };
      if ('inconclusive' in earlier) return { type: 'retryable', message: `could not check whether an earlier create took effect (${earlier.inconclusive}); nothing was sent` };
      if (earlier.found) {
        await ctx.checkpoint({ remoteId: earlier.found.id, createRequested: false });
        // The object found holds what that create sent, which may be an earlier version of the body (one
        // an operator resolved as posted, then the integrator changed): this version is sent to it, or it
        // would be recorded as posted while the register keeps the old one (the review of issue 19).
        const up = await api.update(resource.path, resource.type, earlier.found.id, wire(r, ctx.record.checkpoints as KontantanalysCheckpoints, stockholmDate(clock())));
        if (!up.ok) return up.outcome;
        return { type: 'posted', httpStatus: 200, body: { remoteId: earlier.found.id, action: 'created' }, note: 'an earlier create had taken effect: found, not created again, and brought up to this version' };
      }
      await ctx.checkpoint({ createRequested: false });
    }
    if (r.resource === 'providers') {
      const known = await registeredProviders(api);
      if (!known.ok) return known.outcome;
      const match = findMatch(r.attributes as unknown as ProviderLike, known.list as { id: number; attributes: Partial<ProviderLike> }[], settings().KONTANTANALYS_MATCH_DISTANCE_M);
      if (match) {
        // Mapped, not overwritten: a registered service point may be another supplier's record too.
        // Later changes the integrator sends are updates to it, as for any mapped object.
        await ctx.checkpoint({ remoteId: match.remoteId, match });
        return { type: 'posted', httpStatus: 200, body: { remoteId: match.remoteId, action: 'matched', match }, note: `matched existing provider ${match.remoteId} by ${match.by} (${match.distanceM} m): not created again` };
      }
    }
    await ctx.checkpoint({ createRequested: true, createAnsweredAt: undefined });
    const made = await api.create(resource.path, resource.type, wire(r, ctx.record.checkpoints as KontantanalysCheckpoints, stockholmDate(clock())));
    if (!made.ok) {
      await ctx.checkpoint(made.outcome.type === 'ambiguous' ? { createAnsweredAt: clock() } : { createRequested: false });
      return made.outcome;
    }
    await ctx.checkpoint({ remoteId: made.value.id, createRequested: false });
    if (r.resource === 'providers' && providers) providers.list.push(made.value);
    return { type: 'posted', httpStatus: 201, body: { remoteId: made.value.id, action: 'created' } };
  }

  async function post(request: Record<string, unknown>, ctx: AttemptContext): Promise<Outcome> {
    const r = request as unknown as KontantanalysRequest;
    const resource = RESOURCE_API[r.resource];
    const api = getClient().bound(ctx.signal);
    const cp = ctx.record.checkpoints as KontantanalysCheckpoints;
    if (cp.remoteId !== undefined && !cp.createRequested) {
      const up = await api.update(resource.path, resource.type, cp.remoteId, wire(r, ctx.record.checkpoints as KontantanalysCheckpoints, stockholmDate(clock())));
      if (up.ok) return { type: 'posted', httpStatus: 200, body: { remoteId: cp.remoteId, action: 'updated', ...(cp.match ? { match: cp.match } : {}) } };
      // The test instance is reset every night: the mapping points at nothing, so create and re-map.
      if (up.status !== 404) return up.outcome;
      await ctx.checkpoint({ remoteId: undefined, match: undefined, remapped: `remote ${cp.remoteId} was gone (404): created again` });
    }
    return create(r, ctx, api);
  }

  async function reconcile(record: PaymentRecord, ctx: AttemptContext): Promise<ReconcileResult> {
    const r = record.request as unknown as KontantanalysRequest;
    const cp = record.checkpoints as KontantanalysCheckpoints;
    // No create was asked for (an update is idempotent: whether or not it landed, sending it again is safe).
    if (!cp.createRequested) return { type: 'absent' };
    const earlier = await findCreated(r, getClient().bound(ctx.signal), createdSince(record));
    if ('unknowable' in earlier) return { type: 'unknowable', message: earlier.unknowable };
    if ('inconclusive' in earlier) return { type: 'inconclusive', message: earlier.inconclusive };
    if (!earlier.found) {
      await ctx.checkpoint({ createRequested: false });
      return { type: 'absent' };
    }
    await ctx.checkpoint({ remoteId: earlier.found.id, createRequested: false });
    return { type: 'found', body: { remoteId: earlier.found.id, action: 'created' } };
  }

  return {
    ...kontantanalysDescription(config),
    prepare: (signal) => getClient().prepare(signal),
    parse(input: InboundRequest) {
      const resource = input.pathParameters?.resource as Resource;
      const externalId = input.pathParameters?.externalId ?? '';
      if (!(RESOURCES as readonly string[]).includes(resource)) {
        throw validationProblem([{ pointer: 'path:resource', detail: `must be one of ${RESOURCES.join(', ')}` }], 'path');
      }
      const errors: FieldError[] = [];
      const id = externalIdSchema.safeParse(externalId);
      if (!id.success) errors.push(...id.error.issues.map((i) => ({ pointer: 'path:externalId', detail: i.message })));
      const body = input.body;
      // The API's own envelope (only `data` with `type`, `id`, `attributes`: envelopeSchema) or bare attributes.
      const enveloped = !!body && typeof body === 'object' && !Array.isArray(body) && Object.hasOwn(body, 'data');
      const parsed = enveloped ? envelopeSchema(resource).transform((e) => e.data.attributes).safeParse(body) : schemas[resource].safeParse(body);
      const prefix = enveloped ? '#/data/attributes/' : '#/';
      // zod's record drops a member named "__proto__" without a word (it would replace the prototype of the
      // object it builds): refused here by name instead, as every other unknown property is (issue 20, item 9).
      const raw = (enveloped ? (body as { data?: { attributes?: unknown } }).data?.attributes : body) as { properties?: unknown; serviceTypeId?: unknown } | null | undefined;
      if (resource === 'services' && raw && typeof raw === 'object' && raw.properties && typeof raw.properties === 'object' && Object.hasOwn(raw.properties, '__proto__')) {
        errors.push({ pointer: `${prefix}properties/__proto__`, detail: unknownPropertyDetail(raw.serviceTypeId) });
      }
      if (!parsed.success) errors.push(...fieldErrors(parsed.error).map((e) => misplacedExternalId(resource, prefix, e)));
      else {
        const attributes = parsed.data as Record<string, unknown>;
        const cross = crossFieldErrors(resource, attributes, { today: stockholmDate(clock()), extendedPermission: extendedPermission() });
        const given = (attributes.properties as Record<string, unknown> | undefined)?.externalId;
        if (resource === 'services' && typeof given === 'string' && given !== externalId) {
          cross.push({ pointer: '#/properties/externalId', detail: `must be the externalId in the path ("${externalId}") or left out: paybridge sends the path's externalId there and finds the service by it` });
        }
        errors.push(...cross.map((e) => ({ ...e, pointer: e.pointer.replace('#/', prefix) })));
      }
      if (errors.length > 0 || !parsed.success) throw validationProblem(errors, RESOURCE_API[resource].type);
      const request: KontantanalysRequest = { resource, externalId, attributes: withoutOwnExternalId(parsed.data as Record<string, unknown>) };
      return { tenant: 'default', key: kontantanalysKey(resource, externalId), request: request as unknown as Record<string, unknown>, keyPointer: 'path:externalId' };
    },
    post,
    reconcile,
  };
});
