import type { Dispatcher } from 'undici';
import type { Config } from '../../config.js';
import { stockholmDate } from '../../dates.js';
import type { Outcome, PaymentRecord } from '../../core/types.js';
import { fieldErrors, validationProblem, type FieldError } from '../../http/problem.js';
import { requireConfig, type AttemptContext, type InboundRequest, type ReconcileResult, type SystemModule } from '../types.js';
import { KontantanalysClient, type Remote } from './client.js';
import { findMatch, type Match, type ProviderLike } from './matching.js';
import { crossFieldErrors, externalIdSchema, RESOURCE_API, RESOURCES, schemas, type Resource } from './schema.js';

export const KONTANTANALYS = 'kontantanalys';

export interface KontantanalysRequest {
  resource: Resource;
  externalId: string;
  attributes: Record<string, unknown>;
}

export interface KontantanalysCheckpoints {
  remoteId?: number;
  createRequested?: boolean;
  match?: Match;
  /** When the integrator last confirmed the data (any PUT, changed or not): drives timelinessDate. */
  confirmedAt?: string;
  /** The timelinessDate last sent for a service (YYYY-MM-DD). */
  timelinessDate?: string;
}

export function kontantanalysKey(resource: string, externalId: string): string {
  return `${resource}:${externalId}`;
}

/**
 * The attributes as sent: a service carries our externalId (the API keeps it for exactly this) and,
 * unless the integrator gave one, the timelinessDate the scheduled run derived from its last
 * confirmation. Derived data lives in the checkpoints, so it never changes the integrator's payload.
 */
function wire(r: KontantanalysRequest, cp: KontantanalysCheckpoints): Record<string, unknown> {
  if (r.resource !== 'services') return r.attributes;
  return { ...(cp.timelinessDate ? { timelinessDate: cp.timelinessDate } : {}), ...r.attributes, externalId: r.externalId };
}

export function kontantanalysModule(config: Config, dispatcher: Dispatcher, clock: () => number): SystemModule {
  let client: KontantanalysClient | undefined;
  let providers: { at: number; list: Remote[] } | undefined;
  const getClient = () => {
    if (client) return client;
    requireConfig(config, ['KONTANTANALYS_BASE_URL', 'KONTANTANALYS_USERNAME', 'KONTANTANALYS_PASSWORD'] as const, 'Kontantanalys');
    client = new KontantanalysClient(
      { baseUrl: config.KONTANTANALYS_BASE_URL as string, username: config.KONTANTANALYS_USERNAME as string, password: config.KONTANTANALYS_PASSWORD as string },
      dispatcher,
      clock,
    );
    return client;
  };

  /** All registered providers, cached for five minutes: matching reads ~17,000 of them. */
  async function registeredProviders(): Promise<{ ok: true; list: Remote[] } | { ok: false; outcome: Outcome }> {
    if (providers && clock() - providers.at < 300_000) return { ok: true, list: providers.list };
    const r = await getClient().list(RESOURCE_API.providers.path);
    if (!r.ok) return r;
    providers = { at: clock(), list: r.value };
    return { ok: true, list: r.value };
  }

  async function create(r: KontantanalysRequest, ctx: AttemptContext): Promise<Outcome> {
    const api = RESOURCE_API[r.resource];
    if (r.resource === 'providers') {
      const known = await registeredProviders();
      if (!known.ok) return known.outcome;
      const match = findMatch(r.attributes as unknown as ProviderLike, known.list as { id: number; attributes: Partial<ProviderLike> }[], config.KONTANTANALYS_MATCH_DISTANCE_M);
      if (match) {
        // Mapped, not overwritten: a registered service point may be another supplier's record too.
        // Later changes the integrator sends are updates to it, as for any mapped object.
        await ctx.checkpoint({ remoteId: match.remoteId, match });
        return { type: 'posted', httpStatus: 200, body: { remoteId: match.remoteId, action: 'matched', match }, note: `matched existing provider ${match.remoteId} by ${match.by} (${match.distanceM} m): not created again` };
      }
    }
    await ctx.checkpoint({ createRequested: true });
    const made = await getClient().create(api.path, api.type, wire(r, ctx.record.checkpoints as KontantanalysCheckpoints));
    if (!made.ok) {
      if (made.outcome.type !== 'ambiguous') await ctx.checkpoint({ createRequested: false });
      return made.outcome;
    }
    await ctx.checkpoint({ remoteId: made.value.id, createRequested: false });
    if (r.resource === 'providers' && providers) providers.list.push(made.value);
    return { type: 'posted', httpStatus: 201, body: { remoteId: made.value.id, action: 'created' } };
  }

  async function post(request: Record<string, unknown>, ctx: AttemptContext): Promise<Outcome> {
    const r = request as unknown as KontantanalysRequest;
    const api = RESOURCE_API[r.resource];
    const cp = ctx.record.checkpoints as KontantanalysCheckpoints;
    if (cp.remoteId !== undefined) {
      const up = await getClient().update(api.path, api.type, cp.remoteId, wire(r, ctx.record.checkpoints as KontantanalysCheckpoints));
      if (up.ok) return { type: 'posted', httpStatus: 200, body: { remoteId: cp.remoteId, action: 'updated', ...(cp.match ? { match: cp.match } : {}) } };
      // The test instance is reset every night: the mapping points at nothing, so create and re-map.
      if (up.status !== 404) return up.outcome;
      await ctx.checkpoint({ remoteId: undefined, match: undefined, remapped: `remote ${cp.remoteId} was gone (404): created again` });
    }
    return create(r, ctx);
  }

  async function reconcile(record: PaymentRecord, ctx: AttemptContext): Promise<ReconcileResult> {
    const r = record.request as unknown as KontantanalysRequest;
    const api = RESOURCE_API[r.resource];
    const cp = record.checkpoints as KontantanalysCheckpoints;
    if (cp.remoteId !== undefined && !cp.createRequested) {
      // An update is idempotent: whether or not it landed, sending it again is safe.
      return { type: 'absent' };
    }
    if (!cp.createRequested) return { type: 'absent' };
    let found: Remote | undefined;
    if (r.resource === 'providers') {
      providers = undefined;
      const known = await registeredProviders();
      if (!known.ok) return { type: 'inconclusive', message: known.outcome.type };
      const m = findMatch(r.attributes as unknown as ProviderLike, known.list as { id: number; attributes: Partial<ProviderLike> }[], config.KONTANTANALYS_MATCH_DISTANCE_M);
      found = m ? known.list.find((p) => p.id === m.remoteId) : undefined;
    } else if (r.resource === 'services') {
      const all = await getClient().list(api.path);
      if (!all.ok) return { type: 'inconclusive', message: all.outcome.type };
      found = all.value.find((s) => s.attributes.externalId === r.externalId);
    } else {
      return { type: 'unknowable', message: `a ${api.type} may have been created, and ${api.type}s carry no externalId to find it by: check Kontantanalys before resolving` };
    }
    if (!found) {
      await ctx.checkpoint({ createRequested: false });
      return { type: 'absent' };
    }
    await ctx.checkpoint({ remoteId: found.id, createRequested: false });
    return { type: 'found', body: { remoteId: found.id, action: 'created' } };
  }

  return {
    name: KONTANTANALYS,
    // A create may have happened: ask (providers by matching, services by externalId) before creating again.
    ambiguity: 'reconcile',
    maxPerSecond: config.KONTANTANALYS_MAX_RPS,
    parse(input: InboundRequest) {
      const resource = input.pathParameters?.resource as Resource;
      const externalId = input.pathParameters?.externalId ?? '';
      if (!(RESOURCES as readonly string[]).includes(resource)) {
        throw validationProblem([{ pointer: 'path:resource', detail: `must be one of ${RESOURCES.join(', ')}` }], 'path');
      }
      const errors: FieldError[] = [];
      const id = externalIdSchema.safeParse(externalId);
      if (!id.success) errors.push(...id.error.issues.map((i) => ({ pointer: 'path:externalId', detail: i.message })));
      const envelope = input.body as { data?: { type?: unknown; attributes?: unknown } } | undefined;
      // The API's own envelope is accepted as well as bare attributes.
      const attributesIn = envelope && typeof envelope === 'object' && 'data' in envelope ? envelope.data?.attributes : input.body;
      const parsed = schemas[resource].safeParse(attributesIn);
      const prefix = attributesIn === input.body ? [] : ['data', 'attributes'];
      if (!parsed.success) errors.push(...fieldErrors(parsed.error, prefix));
      else {
        const cross = crossFieldErrors(resource, parsed.data as Record<string, unknown>, { today: stockholmDate(clock()), extendedPermission: config.KONTANTANALYS_EXTENDED_PERMISSION });
        errors.push(...cross.map((e) => ({ ...e, pointer: prefix.length ? e.pointer.replace('#/', '#/data/attributes/') : e.pointer })));
      }
      if (errors.length > 0 || !parsed.success) throw validationProblem(errors, RESOURCE_API[resource].type);
      const request: KontantanalysRequest = { resource, externalId, attributes: parsed.data as Record<string, unknown> };
      return { tenant: 'default', key: kontantanalysKey(resource, externalId), request: request as unknown as Record<string, unknown>, keyPointer: 'path:externalId' };
    },
    routeKey(key) {
      const at = key.indexOf(':');
      // `<resource>:<externalId>`, or `run:latest` for the scheduled run's summary.
      const known = [...RESOURCES, 'run'].includes(key.slice(0, at));
      return at > 0 && known && at < key.length - 1 ? { tenant: 'default', key } : undefined;
    },
    post,
    reconcile,
    publicRequest: (request) => request,
  };
}
