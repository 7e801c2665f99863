import type { Dispatcher } from 'undici';
import type { Config } from '../../config.js';
import { stockholmDate } from '../../dates.js';
import type { Outcome, PaymentRecord } from '../../core/types.js';
import { fieldErrors, validationProblem } from '../../http/problem.js';
import { requireConfig, type AttemptContext, type InboundRequest, type ReconcileResult, type SystemModule } from '../types.js';
import { KontantanalysClient, type Remote } from './client.js';
import { findMatch, type Match, type ProviderLike } from './matching.js';
import { crossFieldErrors, RESOURCE_API, RESOURCES, schemas, type Resource } from './schema.js';

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

const EXTERNAL_ID = /^[\w.\-:@]{1,100}$/;

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
  const settings = () => config.system(KONTANTANALYS);
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

  /** All registered providers, cached for five minutes: matching reads ~17,000 of them. */
  async function registeredProviders(api: KontantanalysClient, fresh = false): Promise<{ ok: true; list: Remote[] } | { ok: false; outcome: Outcome }> {
    if (!fresh && providers && clock() - providers.at < 300_000) return { ok: true, list: providers.list };
    const r = await api.list(RESOURCE_API.providers.path);
    if (!r.ok) return r;
    providers = { at: clock(), list: r.value };
    return { ok: true, list: r.value };
  }

  /**
   * Whether an earlier create of this object took effect: providers by matching the register, services
   * by our externalId. Templates, adaptations and fee models carry nothing to look them up by.
   */
  async function findCreated(r: KontantanalysRequest, api: KontantanalysClient): Promise<{ found?: Remote } | { unknowable: string } | { inconclusive: string }> {
    const resource = RESOURCE_API[r.resource];
    if (r.resource === 'providers') {
      const known = await registeredProviders(api, true);
      if (!known.ok) return { inconclusive: known.outcome.type };
      const m = findMatch(r.attributes as unknown as ProviderLike, known.list as { id: number; attributes: Partial<ProviderLike> }[], settings().KONTANTANALYS_MATCH_DISTANCE_M);
      const found = m ? known.list.find((p) => p.id === m.remoteId) : undefined;
      return found ? { found } : {};
    }
    if (r.resource === 'services') {
      const all = await api.list(resource.path);
      if (!all.ok) return { inconclusive: all.outcome.type };
      const found = all.value.find((s) => s.attributes.externalId === r.externalId);
      return found ? { found } : {};
    }
    return { unknowable: `a ${resource.type} may have been created, and ${resource.type}s carry no externalId to find it by: check Kontantanalys before resolving` };
  }

  async function create(r: KontantanalysRequest, ctx: AttemptContext, api: KontantanalysClient): Promise<Outcome> {
    const resource = RESOURCE_API[r.resource];
    if ((ctx.record.checkpoints as KontantanalysCheckpoints).createRequested) {
      // An earlier create may have reached the register (issue 10): look it up before creating again.
      const earlier = await findCreated(r, api);
      if ('unknowable' in earlier) return { type: 'ambiguous', message: earlier.unknowable };
      if ('inconclusive' in earlier) return { type: 'retryable', message: `could not check whether an earlier create took effect (${earlier.inconclusive}); nothing was sent` };
      if (earlier.found) {
        await ctx.checkpoint({ remoteId: earlier.found.id, createRequested: false });
        return { type: 'posted', httpStatus: 200, body: { remoteId: earlier.found.id, action: 'created' }, note: 'an earlier create had taken effect: found, not created again' };
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
    await ctx.checkpoint({ createRequested: true });
    const made = await api.create(resource.path, resource.type, wire(r, ctx.record.checkpoints as KontantanalysCheckpoints));
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
    const resource = RESOURCE_API[r.resource];
    const api = getClient().bound(ctx.signal);
    const cp = ctx.record.checkpoints as KontantanalysCheckpoints;
    if (cp.remoteId !== undefined && !cp.createRequested) {
      const up = await api.update(resource.path, resource.type, cp.remoteId, wire(r, ctx.record.checkpoints as KontantanalysCheckpoints));
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
    const earlier = await findCreated(r, getClient().bound(ctx.signal));
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
    name: KONTANTANALYS,
    // A create may have happened: ask (providers by matching, services by externalId) before creating again.
    ambiguity: 'reconcile',
    maxPerSecond: () => settings().KONTANTANALYS_MAX_RPS,
    prepare: (signal) => getClient().prepare(signal),
    parse(input: InboundRequest) {
      const resource = input.pathParameters?.resource as Resource;
      const externalId = input.pathParameters?.externalId ?? '';
      if (!(RESOURCES as readonly string[]).includes(resource)) {
        throw validationProblem([{ pointer: 'path:resource', detail: `must be one of ${RESOURCES.join(', ')}` }], 'path');
      }
      const errors = [];
      if (!EXTERNAL_ID.test(externalId)) errors.push({ pointer: 'path:externalId', detail: 'must be 1–100 characters: letters, digits, . - _ : @' });
      const envelope = input.body as { data?: { type?: unknown; attributes?: unknown } } | undefined;
      // The API's own envelope is accepted as well as bare attributes.
      const attributesIn = envelope && typeof envelope === 'object' && 'data' in envelope ? envelope.data?.attributes : input.body;
      const parsed = schemas[resource].safeParse(attributesIn);
      const prefix = attributesIn === input.body ? [] : ['data', 'attributes'];
      if (!parsed.success) errors.push(...fieldErrors(parsed.error, prefix));
      else {
        const cross = crossFieldErrors(resource, parsed.data as Record<string, unknown>, { today: stockholmDate(clock()), extendedPermission: extendedPermission() });
        errors.push(...cross.map((e) => ({ ...e, pointer: prefix.length ? e.pointer.replace('#/', '#/data/attributes/') : e.pointer })));
      }
      if (errors.length > 0 || !parsed.success) throw validationProblem(errors, RESOURCE_API[resource].type);
      const request: KontantanalysRequest = { resource, externalId, attributes: parsed.data as Record<string, unknown> };
      return { tenant: 'default', key: kontantanalysKey(resource, externalId), request: request as unknown as Record<string, unknown> };
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
