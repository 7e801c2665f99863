import type { AppDeps } from '../deps.js';
import { submit, type SubmitResult } from '../core/intake.js';
import { assertStorableKey } from '../core/keys.js';
import { scheduleOf, type EngineSettings } from '../core/lifecycle.js';
import { ACTIVE_STATUSES, recordHeadline, type PaymentRecord } from '../core/types.js';
import type { PersonalValue, SystemDescription } from '../systems/types.js';
import { ProblemError } from './problem.js';
import type { Principal } from './auth.js';
import { httpRoute, type HttpReply } from './route.js';
import { assertInScope, inScope } from './scopes.js';

/**
 * The status route of a record, each segment percent-encoded once (`/` and `%` included, so the key
 * comes back whole). Never throws: a key holding a lone surrogate has no UTF-8 form and made
 * encodeURIComponent throw a URIError after the payment was posted (issue 13). Such keys are refused
 * at intake now; one recorded before that gets U+FFFD in its place, a link that answers 404 rather
 * than a reply that fails.
 */
export function statusPath(system: string, key: string): string {
  return `/v1/payments/${encodeURIComponent(system.toWellFormed())}/${encodeURIComponent(key.toWellFormed())}`;
}

/**
 * Where a record is shown: its system's own route when it has one (a Kontantanalys object), else the
 * status route. Every reply about the record names it, as `location` and as `statusUrl`.
 */
export function locationOf(record: Pick<PaymentRecord, 'system' | 'key'>, module: SystemDescription | undefined): string {
  return module?.statusPath?.(record.key) ?? statusPath(record.system, record.key);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Keys whose values are codes, kinds and times of our own or of a documented list: never scrubbed. */
const STRUCTURAL = new Set(['code', 'kind', 'event', 'at', 'httpStatus']);

/**
 * Replaces personal values wherever they occur in a JSON value: strings where one stands as a whole
 * token (not inside a longer word or number, so personId 4568 leaves ClubId 45680 alone), and numbers
 * equal to one under a key that names a person (`updatedPersonId`, `personId`): elsewhere a number is a
 * status, a count or an amount, and a short id must not turn an `httpStatus` into a string. Keys are
 * left as they are, and so are the values of STRUCTURAL keys: a documented error code is never
 * personal, even when a (sandbox) personId happens to equal it (NIF's 1002).
 */
export function scrubber(values: readonly PersonalValue[]): <T>(value: T) => T {
  const usable = values.filter((v) => v.value.trim() !== '');
  if (usable.length === 0) return (value) => value;
  const patterns = usable.map((v) => ({ re: new RegExp(`(?<![\\p{L}\\p{N}])${escapeRegExp(v.value)}(?![\\p{L}\\p{N}])`, 'gu'), shownAs: v.shownAs }));
  const walk = (node: unknown, key = ''): unknown => {
    if (STRUCTURAL.has(key)) return node;
    if (typeof node === 'string') return patterns.reduce((text, p) => text.replace(p.re, () => p.shownAs), node);
    if (typeof node === 'number' && /person/i.test(key)) return usable.find((v) => /^\d+$/.test(v.value) && Number(v.value) === node)?.shownAs ?? node;
    if (Array.isArray(node)) return node.map((n) => walk(n, key));
    if (node && typeof node === 'object') return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, walk(v, k)]));
    return node;
  };
  return <T>(value: T) => walk(value) as T;
}

/**
 * The record as callers see it: ids, status, timing, the retry schedule while it is pending, the
 * downstream's answer and earlier revisions; no personal data beyond ids. The module's personal
 * values are replaced in everything that may repeat them (the downstream's answer, errors, history).
 */
export function publicView(record: PaymentRecord, module: SystemDescription | undefined, settings?: EngineSettings, now = Date.now()) {
  const active = ACTIVE_STATUSES.includes(record.status);
  const scrub = scrubber(module?.personalValues?.(record.request) ?? []);
  return {
    ...recordHeadline(record),
    ...(active && settings && record.budgetFrom !== undefined ? { schedule: scheduleOf(record, settings, now) } : {}),
    ...(record.result ? { result: scrub(record.result) } : {}),
    ...(record.error ? { error: scrub(record.error) } : {}),
    request: module ? module.publicRequest(record.request) : {},
    checkpoints: scrub(record.checkpoints),
    history: scrub(record.history),
    ...(record.revisions && record.revisions.length > 0 ? { revisions: scrub(record.revisions) } : {}),
    statusUrl: locationOf(record, module),
  };
}

/**
 * Whether a caller may see a record: only the caller that submitted it. Records from before callers
 * were stored (no `caller`) stay visible to every caller, as they were.
 */
export function visibleTo(record: PaymentRecord, principal: Principal): boolean {
  // Outside the caller's scope (issue 20, item 5) a record is not there for it, whoever submitted it.
  return (record.caller === undefined || record.caller === principal.caller) && inScope(principal.scope, record);
}

function rejection(record: PaymentRecord, module: SystemDescription): ProblemError {
  const error = record.error;
  const downstream = error?.code ? `${error.code}: ${error.message}` : (error?.message ?? 'rejected');
  return new ProblemError(
    422,
    error?.kind === 'rejected' ? 'rejected-downstream' : 'payment-failed',
    error?.kind === 'rejected' ? `${module.name} rejected the payment` : 'The payment could not be posted',
    error?.kind === 'rejected'
      ? `${module.name} answered: ${downstream}. The payment was not registered; correct it and send it again under the same key (the corrected body becomes a new revision of this payment).`
      : `${downstream}. The payment was not registered.`,
    undefined,
    {
      system: module.name,
      key: record.key,
      statusUrl: locationOf(record, module),
      downstream: { ...(error?.httpStatus ? { httpStatus: error.httpStatus } : {}), ...(error?.code ? { code: error.code } : {}), message: error?.message },
    },
    { location: locationOf(record, module) },
  );
}

/** DESIGN.md's reply column: 201 posted, 200 replay of a posted key, 202 pending, 422 rejected or key reuse. */
export function replyFor(result: SubmitResult, module: SystemDescription, settings?: EngineSettings): HttpReply {
  const { record } = result;
  const location = locationOf(record, module);
  if (result.kind === 'foreign') {
    // Another caller's payment: nothing about it is told, not even its status.
    throw new ProblemError(409, 'idempotency-key-taken', 'Key belongs to another caller', `${module.name} key "${record.key}" is used by another caller. Nothing was recorded or sent. Use a key of your own.`);
  }
  if (result.kind === 'conflict') {
    throw new ProblemError(
      422,
      'idempotency-key-reused',
      'Key already used for another payment',
      `${module.name} key "${record.key}" was received before with a different payload and that payment is ${record.status}. One key is one payment: nothing was sent. Send a new payment with a new key (a payment that failed or is held may be sent again with corrected data under the same key).`,
      undefined,
      { system: module.name, key: record.key, statusUrl: location, existingStatus: record.status },
      { location },
    );
  }
  if (result.kind === 'downstream-holds') {
    throw new ProblemError(409, 'downstream-holds', 'The downstream holds this payment already', result.reason, undefined, { system: module.name, key: record.key, statusUrl: location, existingStatus: record.status }, { location });
  }
  if (result.kind === 'earlier-revision' && result.revision.status === 'failed' && result.revision.error) {
    // That revision's own outcome: the downstream's refusal of it, said to be an earlier revision.
    const r = result.revision;
    const refused = rejection({ ...record, error: r.error }, module);
    throw new ProblemError(
      refused.status,
      refused.slug,
      refused.title,
      `This body is revision ${r.revision} of the payment, which ended failed: ${refused.detail} Revision ${record.revision ?? 1} replaced it and is ${record.status}; nothing was sent.`,
      undefined,
      { ...refused.extra, revision: r.revision, currentRevision: record.revision ?? 1, existingStatus: record.status },
      refused.headers,
    );
  }
  if (result.kind === 'earlier-revision') {
    const r = result.revision;
    const ended = r.error ? `${r.status} (${r.error.code ? `${r.error.code}: ` : ''}${r.error.message})` : r.status;
    throw new ProblemError(
      409,
      'superseded-revision',
      'This body is an earlier revision of the payment',
      `${module.name} key "${record.key}" received this body as revision ${r.revision}, which ended ${ended}; revision ${record.revision ?? 1} replaced it and is ${record.status}. Nothing was sent. Send the corrected body, or look at the payment's status.`,
      undefined,
      { system: module.name, key: record.key, statusUrl: location, revision: r.revision, revisionStatus: r.status, currentRevision: record.revision ?? 1, existingStatus: record.status },
      { location },
    );
  }
  if (record.status === 'failed') throw rejection(record, module);
  const replayed = result.kind === 'duplicate';
  const headers: Record<string, string> = { location, ...(replayed ? { 'idempotent-replayed': 'true' } : {}) };
  if (record.status === 'posted') return { status: replayed ? 200 : 201, body: publicView(record, module, settings), headers };
  return { status: 202, body: publicView(record, module, settings), headers };
}

/** A payment route: the module parses and validates, the engine claims and posts. */
export function paymentRoute(system: string, getDeps: () => Promise<AppDeps>) {
  return httpRoute({
    getDeps,
    takesBody: true,
    remembersWebhooks: true,
    async handle(req, deps) {
      const module = deps.systems(system);
      if (!module) throw new Error(`system module ${system} is not registered`);
      // A system outside the caller's scope is refused before its body is validated; a club once the body names it (issue 20, item 5).
      assertInScope(req.principal.scope, { system: module.name });
      const parsed = module.parse({ body: req.body, headers: req.headers });
      assertInScope(req.principal.scope, { system: module.name, tenant: parsed.tenant, key: parsed.key });
      // Before anything is claimed or posted: a key the store or a URL cannot hold is the caller's 400, not our 500.
      assertStorableKey({ system: module.name, tenant: parsed.tenant, key: parsed.key, pointer: parsed.keyPointer ?? '#' }, 'payment');
      const correlationId = req.headers['x-correlation-id']?.slice(0, 100) || req.requestId;
      const result = await submit(deps, module, parsed, { owner: req.requestId, correlationId, deadline: req.deadline, caller: req.principal.caller });
      return replyFor(result, module, deps.settings);
    },
  });
}
