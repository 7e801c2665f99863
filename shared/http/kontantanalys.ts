import { upsert, type UpsertResult } from '../core/intake.js';
import { addressErrors, assertStorableKey } from '../core/keys.js';
import { recordPk } from '../core/types.js';
import type { AppDeps } from '../deps.js';
import { KONTANTANALYS, kontantanalysKey, RESOURCES, type Resource } from '../systems/kontantanalys/describe.js';
import { externalIdSchema, RESOURCE_API } from '../systems/kontantanalys/schema.js';
import type { SystemDescription, SystemModule } from '../systems/types.js';
import { locationOf, publicView, replyFor, visibleTo } from './payments.js';
import { ProblemError, type FieldError } from './problem.js';
import { httpRoute, type HttpReply } from './route.js';
import { assertInScope, inScope } from './scopes.js';

function remoteIdOf(checkpoints: Record<string, unknown>): number | null {
  return typeof checkpoints.remoteId === 'number' ? checkpoints.remoteId : null;
}

function upsertReply(result: UpsertResult, module: SystemDescription): HttpReply {
  // Another caller's object: the payment routes' refusal, which tells nothing about it (issue 20, item 1).
  if (result.kind === 'foreign') return replyFor({ kind: 'foreign', record: result.record }, module);
  if (result.kind === 'busy') {
    const why =
      result.record.status === 'unknown'
        ? 'is unknown (an earlier create may or may not have happened) and waits for an operator: resolve it with `paybridge payments resolve`, then send this version again'
        : result.record.status === 'reconciling'
          ? 'is being reconciled with Kontantanalys. Send this one again in a few seconds'
          : result.record.status === 'held' || result.record.status === 'failed'
            ? `is ${result.record.status} and may already be in Kontantanalys: an operator reconciles it first (\`paybridge redrive\`), then send this version again`
            : 'is being sent right now. Send this one again in a few seconds';
    const location = locationOf(result.record, module);
    throw new ProblemError(409, 'update-in-flight', 'The previous version is not settled yet', `The previous version of ${result.record.key} ${why}; nothing was recorded.`, undefined, { statusUrl: location }, { 'retry-after': '5', location });
  }
  if (result.kind === 'unchanged' && result.record.status !== 'posted') {
    // The same body as a version that is still pending, held or refused: answer as a duplicate does.
    return replyFor({ kind: 'duplicate', record: result.record }, module);
  }
  if (result.kind === 'unchanged') {
    return { status: 200, body: { ...publicView(result.record, module), unchanged: true, remoteId: remoteIdOf(result.record.checkpoints) }, headers: { location: locationOf(result.record, module) } };
  }
  const reply = replyFor({ kind: 'created', record: result.record }, module);
  // A changed version that posted is an update of something that exists, and a provider matched to one
  // already registered created nothing: 200 for both, not 201 Created (issue 22).
  const matched = (result.record.result?.body as { action?: unknown } | undefined)?.action === 'matched';
  const status = (result.kind === 'changed' || matched) && reply.status === 201 ? 200 : reply.status;
  return { ...reply, status, body: { ...(reply.body as object), remoteId: remoteIdOf(result.record.checkpoints) } };
}

function moduleOf(deps: AppDeps): SystemModule {
  const module = deps.systems(KONTANTANALYS);
  if (!module) throw new Error('kontantanalys module is not registered');
  return module;
}

/** The GET route only shows a record: the description is enough (its function carries no client). */
function descriptionOf(deps: AppDeps): SystemDescription {
  const described = deps.modules.get(KONTANTANALYS);
  if (!described) throw new Error('kontantanalys is not described in this function');
  return described;
}

/** `PUT /v1/kontantanalys/{resource}/{externalId}`: upsert by our externalId. */
export function kontantanalysPutRoute(getDeps: () => Promise<AppDeps>) {
  return httpRoute({
    getDeps,
    takesBody: true,
    remembersWebhooks: true,
    async handle(req, deps) {
      const module = moduleOf(deps);
      assertInScope(req.principal.scope, { system: module.name });
      const parsed = module.parse({ body: req.body, headers: req.headers, pathParameters: req.pathParameters });
      assertInScope(req.principal.scope, { system: module.name, tenant: parsed.tenant, key: parsed.key });
      assertStorableKey({ system: module.name, tenant: parsed.tenant, key: parsed.key, pointer: parsed.keyPointer ?? 'path:externalId' }, RESOURCE_API[req.pathParameters.resource as Resource]?.type ?? 'request');
      // Another caller's object is refused by upsert() itself, and its writes carry this caller so the
      // store refuses them too: a check here, before it, left a window (issue 20, item 1).
      const correlationId = req.headers['x-correlation-id']?.slice(0, 100) || req.requestId;
      return upsertReply(await upsert(deps, module, parsed, { owner: req.requestId, correlationId, deadline: req.deadline, caller: req.principal.caller }), module);
    },
  });
}

/** `GET /v1/kontantanalys/{resource}/{externalId}`: our record and the remote id it maps to. */
export function kontantanalysGetRoute(getDeps: () => Promise<AppDeps>) {
  return httpRoute({
    getDeps,
    takesBody: false,
    // A signed read is bound to its path and answered once (issue 20 item 8).
    remembersWebhooks: true,
    async handle(req, deps) {
      const resource = req.pathParameters.resource ?? '';
      const externalId = req.pathParameters.externalId ?? '';
      if (!(RESOURCES as readonly string[]).includes(resource)) {
        throw new ProblemError(404, 'not-found', 'Not found', `There is no Kontantanalys resource "${resource}". Known: ${RESOURCES.join(', ')}.`);
      }
      // An id the PUT route would refuse (ill-formed, over-long, other characters) names nothing stored:
      // say so as a 400 instead of asking the store, which fails on keys over its limit (issue 13).
      const id = externalIdSchema.safeParse(externalId);
      const errors: FieldError[] = id.success
        ? addressErrors({ system: KONTANTANALYS, tenant: 'default', key: kontantanalysKey(resource, externalId), pointer: 'path:externalId' })
        : id.error.issues.map((i) => ({ pointer: 'path:externalId', detail: i.message }));
      if (errors.length > 0) {
        throw new ProblemError(400, 'validation-failed', 'The externalId cannot be one paybridge accepted', `No ${resource} can have been received under this externalId: it ${errors[0]?.detail}. Send it as the PUT did, percent-encoded once.`, errors);
      }
      const key = kontantanalysKey(resource, externalId);
      // Outside the caller's scope the store is not even asked (issue 20, item 5).
      const record = inScope(req.principal.scope, { system: KONTANTANALYS, tenant: 'default', key }) ? await deps.store.get(recordPk(KONTANTANALYS, 'default', key)) : undefined;
      // Another caller's object is answered as one never received, as on the status route.
      if (!record || !visibleTo(record, req.principal)) throw new ProblemError(404, 'payment-not-found', 'Not found', `No ${resource} with externalId "${externalId}" has been received.`);
      return { status: 200, body: { ...publicView(record, descriptionOf(deps)), remoteId: remoteIdOf(record.checkpoints) }, headers: { 'cache-control': 'no-store' } };
    },
  });
}
