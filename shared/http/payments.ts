import type { AppDeps } from '../deps.js';
import { submit, type SubmitResult } from '../core/intake.js';
import { assertStorableKey } from '../core/keys.js';
import { scheduleOf, type EngineSettings } from '../core/lifecycle.js';
import { ACTIVE_STATUSES, type PaymentRecord } from '../core/types.js';
import type { SystemDescription } from '../systems/types.js';
import { ProblemError } from './problem.js';
import { httpRoute, type HttpReply } from './route.js';

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
 * The record as callers see it: ids, status, timing, the retry schedule while it is pending, the
 * downstream's answer and earlier revisions; no personal data beyond ids.
 */
export function publicView(record: PaymentRecord, module: SystemDescription | undefined, settings?: EngineSettings, now = Date.now()) {
  const active = ACTIVE_STATUSES.includes(record.status);
  return {
    system: record.system,
    key: record.key,
    status: record.status,
    revision: record.revision ?? 1,
    attempts: record.attempts,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    ...(record.nextAttemptAt !== undefined && active ? { nextAttemptAt: new Date(record.nextAttemptAt).toISOString() } : {}),
    ...(active && settings && record.budgetFrom !== undefined ? { schedule: scheduleOf(record, settings, now) } : {}),
    ...(record.result ? { result: record.result } : {}),
    ...(record.error ? { error: record.error } : {}),
    request: module ? module.publicRequest(record.request) : {},
    checkpoints: record.checkpoints,
    history: record.history,
    ...(record.revisions && record.revisions.length > 0 ? { revisions: record.revisions } : {}),
    statusUrl: statusPath(record.system, record.key),
  };
}

function rejection(record: PaymentRecord, module: SystemDescription): ProblemError {
  const error = record.error;
  const downstream = error?.code ? `${error.code}: ${error.message}` : (error?.message ?? 'rejected');
  return new ProblemError(
    422,
    error?.kind === 'rejected' ? 'rejected-downstream' : 'payment-failed',
    error?.kind === 'rejected' ? `${module.name} rejected the payment` : 'The payment could not be posted',
    error?.kind === 'rejected'
      ? `${module.name} answered: ${downstream}. The payment was not registered; correct it and send it with a new key.`
      : `${downstream}. The payment was not registered.`,
    undefined,
    {
      system: module.name,
      key: record.key,
      statusUrl: statusPath(record.system, record.key),
      downstream: { ...(error?.httpStatus ? { httpStatus: error.httpStatus } : {}), ...(error?.code ? { code: error.code } : {}), message: error?.message },
    },
    { location: statusPath(record.system, record.key) },
  );
}

/** DESIGN.md's reply column: 201 posted, 200 replay of a posted key, 202 pending, 422 rejected or key reuse. */
export function replyFor(result: SubmitResult, module: SystemDescription, settings?: EngineSettings): HttpReply {
  const { record } = result;
  const location = statusPath(record.system, record.key);
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
    async handle(req, deps) {
      const module = deps.systems(system);
      if (!module) throw new Error(`system module ${system} is not registered`);
      const parsed = module.parse({ body: req.body, headers: req.headers });
      // Before anything is claimed or posted: a key the store or a URL cannot hold is the caller's 400, not our 500.
      assertStorableKey({ system: module.name, tenant: parsed.tenant, key: parsed.key, pointer: parsed.keyPointer ?? '#' }, 'payment');
      const correlationId = req.headers['x-correlation-id']?.slice(0, 100) || req.requestId;
      const result = await submit(deps, module, parsed, { owner: req.requestId, correlationId, deadline: req.deadline, ...(req.principal.caller ? { caller: req.principal.caller } : {}) });
      return replyFor(result, module, deps.settings);
    },
  });
}
