import { createHash, randomBytes } from 'node:crypto';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { redrive, repost, resolveNotPosted, resolvePosted, type OperatorDeps, type OperatorResult } from '../core/operator.js';
import { limitStatus, limitStatusJson, type LimiterState } from '../core/pacing.js';
import { previewOperatorAction, type OperatorAction } from '../core/preview.js';
import { recordHeadline, recordPk, STATUSES, type Fence, type PaymentRecord, type Status } from '../core/types.js';
import type { AppDeps } from '../deps.js';
import { findOperator, type Operator } from '../http/operators.js';
import { publicView } from '../http/payments.js';
import { configuredRate } from '../systems/types.js';
import { ProblemError, problemResponse, type FieldError } from '../http/problem.js';
import { scrubbedEntry, scrubberFor } from '../cli/personal.js';
import type { AuditEntry, AuditLog, BrowseFilter, BrowsePage } from '../store/browse.js';
import { asset, type Asset } from './assets.js';
import { cookieOf, csrfToken, csrfValid, issueSession, readSession, SESSION_COOKIE, sessionCookie, type Session } from './session.js';
import { timelineOf } from './timeline.js';
import type { PaymentEventSummary } from '../events/store.js';

/**
 * The operator console (issue 22): `/console` on `npm start`, its own function in AWS. One handler for
 * the page, its files and its JSON API, so the local gateway and Lambda serve the same thing.
 *
 * Security: operators sign in with an operator key (OPERATOR_KEYS; a caller's API key is not one) and
 * get a signed session cookie (HttpOnly, SameSite=Strict, Secure on HTTPS); every state-changing call
 * needs the session's CSRF token in `x-csrf-token` and a same-origin request; a viewer reads only. The
 * Content Security Policy admits nothing but this origin's own files: no inline script or style.
 */

export interface ConsoleDeps {
  app: AppDeps;
  operators: Map<string, Operator>;
  secret: Buffer;
  /** Mark the cookie Secure (the console is on HTTPS: AWS). */
  secure: boolean;
  audit: AuditLog;
  browse(opts: { filter?: BrowseFilter; cursor?: string; limit: number }): Promise<BrowsePage>;
  fence(): Fence;
  /** Per-system charts' data (the local stack's metrics recorder); absent where none is kept. */
  overview?(now: number): Promise<unknown>;
  /** A payment's settlement events and their deliveries (shared/events/store.ts, paymentEvents); absent: only the record's last event. */
  paymentEvents?(record: PaymentRecord): Promise<PaymentEventSummary[]>;
  /** Each system's limiter item, read only (`GET /console/api/limits`): the store itself, never a live Pacer's cache. */
  limiter: { read(system: string): Promise<LimiterState> };
}

export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS = {
  'content-security-policy': CONSOLE_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
};

const ACTIONS: readonly OperatorAction[] = ['redrive', 'repost', 'resolve-posted', 'resolve-not-posted'];
const MAX_TEXT = 500;

function json(status: number, body: unknown, extra: Record<string, string> = {}): APIGatewayProxyResult {
  return { statusCode: status, headers: { 'content-type': 'application/json', 'cache-control': 'no-store', ...SECURITY_HEADERS, ...extra }, body: JSON.stringify(body) };
}

function problem(p: ProblemError, instance: string): APIGatewayProxyResult {
  const r = problemResponse(p, instance);
  return { ...r, headers: { ...r.headers, 'cache-control': 'no-store', ...SECURITY_HEADERS } };
}

function lowerHeaders(event: APIGatewayProxyEvent): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(event.headers ?? {})) out[k.toLowerCase()] = v ?? undefined;
  return out;
}

function bodyOf(event: APIGatewayProxyEvent): Record<string, unknown> {
  const text = event.isBase64Encoded && event.body ? Buffer.from(event.body, 'base64').toString('utf8') : (event.body ?? '');
  if (text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ProblemError(400, 'malformed-json', 'Malformed JSON', 'The body is not valid JSON.');
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new ProblemError(400, 'malformed-json', 'Malformed JSON', 'The body must be a JSON object.');
  return value as Record<string, unknown>;
}

function invalid(errors: FieldError[], what: string): ProblemError {
  return new ProblemError(400, 'validation-error', `Invalid ${what}`, `The ${what} has ${errors.length} problem${errors.length === 1 ? '' : 's'}: ${errors.map((e) => `${e.pointer} ${e.detail}`).join('; ')}.`, errors);
}

function text(body: Record<string, unknown>, field: string, errors: FieldError[], required: string | undefined): string | undefined {
  const v = body[field];
  if (v === undefined || v === null || (typeof v === 'string' && v.trim() === '')) {
    if (required) errors.push({ pointer: `#/${field}`, detail: required });
    return undefined;
  }
  if (typeof v !== 'string') {
    errors.push({ pointer: `#/${field}`, detail: 'must be text' });
    return undefined;
  }
  if (v.trim().length > MAX_TEXT) errors.push({ pointer: `#/${field}`, detail: `must be at most ${MAX_TEXT} characters` });
  return v.trim();
}

/** `2h`, `30m`, `1d` before now, or an ISO time. */
export function parseTime(value: string, now: number): number | undefined {
  const m = /^(\d+)\s*(m|h|d)$/.exec(value.trim());
  if (m) return now - Number(m[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'm' | 'h' | 'd'];
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : t;
}

/** The listing's filter from the query string, or a 400 naming each bad parameter. */
export function filterFrom(q: Record<string, string | undefined>, systems: readonly string[], now: number): BrowseFilter {
  const errors: FieldError[] = [];
  const list = (v: string | undefined) => (v ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const statuses = list(q.status);
  for (const s of statuses) if (!(STATUSES as readonly string[]).includes(s)) errors.push({ pointer: 'status', detail: `"${s}" is not a status; use ${STATUSES.join(', ')}` });
  const sys = list(q.system);
  for (const s of sys) if (!systems.includes(s)) errors.push({ pointer: 'system', detail: `"${s}" is not a system; use ${systems.join(', ')}` });
  const time = (name: 'since' | 'until') => {
    const v = q[name]?.trim();
    if (!v) return undefined;
    const t = parseTime(v, now);
    if (t === undefined) errors.push({ pointer: name, detail: 'must be like 30m, 2h, 1d or an ISO time' });
    return t;
  };
  const since = time('since');
  const until = time('until');
  if (since !== undefined && until !== undefined && since > until) errors.push({ pointer: 'until', detail: 'must be after since' });
  const caller = q.caller?.trim();
  const keyPrefix = q.prefix?.trim();
  if (keyPrefix && keyPrefix.length > 200) errors.push({ pointer: 'prefix', detail: 'must be at most 200 characters' });
  if (errors.length > 0) throw invalid(errors, 'filter');
  return {
    ...(statuses.length ? { statuses: statuses as Status[] } : {}),
    ...(sys.length ? { systems: sys } : {}),
    ...(caller ? { caller } : {}),
    ...(keyPrefix ? { keyPrefix: safeDecode(keyPrefix) } : {}),
    ...(since !== undefined ? { since } : {}),
    ...(until !== undefined ? { until } : {}),
  };
}

/** A key pasted in the percent-encoded form a status URL shows is taken as the key it encodes. */
function safeDecode(s: string): string {
  try {
    return /%[0-9A-Fa-f]{2}/.test(s) ? decodeURIComponent(s) : s;
  } catch {
    return s;
  }
}

/** A listing row: ids, status, times and the last error, person identifiers hidden. */
function row(record: PaymentRecord) {
  const scrub = scrubberFor(record);
  return {
    ...recordHeadline(record),
    ...(record.caller ? { caller: record.caller } : {}),
    ...(record.error ? { error: { kind: record.error.kind, ...(record.error.code ? { code: record.error.code } : {}), message: scrub.text(record.error.message) } } : {}),
  };
}

/**
 * What the browser's path has before `/console`: `/<stage>` on an API Gateway stage URL (API Gateway hands
 * the function the resource path without it, and the stage path in requestContext.path), '' under npm start
 * or a custom domain mapped at the root. The page's links and the cookie's path need it, or the browser
 * would ask outside the stage and never send the cookie back. Only plain path segments are taken: it goes
 * into a header and the page.
 */
export function publicPrefix(event: Pick<APIGatewayProxyEvent, 'path' | 'requestContext'>): string {
  const seen = (event.requestContext as { path?: unknown } | undefined)?.path;
  const path = event.path;
  if (typeof seen !== 'string' || !path || !seen.endsWith(path)) return '';
  const prefix = seen.slice(0, seen.length - path.length);
  return /^(\/[A-Za-z0-9._~-]+){0,4}$/.test(prefix) ? prefix : '';
}

export function makeConsoleHandler(getDeps: () => Promise<ConsoleDeps>) {
  return async (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> => {
    const path = (event.path ?? '/console').replace(/\/+$/, '') || '/console';
    try {
      return await route(await getDeps(), event, path);
    } catch (err) {
      if (err instanceof ProblemError) return problem(err, path);
      if (err instanceof RangeError) return problem(new ProblemError(400, 'bad-cursor', 'Bad cursor', err.message), path);
      throw err;
    }
  };
}

async function route(deps: ConsoleDeps, event: APIGatewayProxyEvent, path: string): Promise<APIGatewayProxyResult> {
  const method = event.httpMethod;
  const headers = lowerHeaders(event);
  const now = deps.app.clock();
  const prefix = publicPrefix(event);
  const cookiePath = `${prefix}/console`;

  if (method === 'GET' && (path === '/console' || path === '/console/index.html')) return file('index.html', headers, prefix);
  if (method === 'GET' && path.startsWith('/console/assets/')) return file(path.slice('/console/assets/'.length), headers, prefix);
  if (!path.startsWith('/console/api/')) throw new ProblemError(404, 'not-found', 'Not found', `There is no console page ${path}.`);
  const api = path.slice('/console/api/'.length);

  if (api === 'login' && method === 'POST') {
    sameOrigin(headers);
    const body = bodyOf(event);
    const errors: FieldError[] = [];
    const key = text(body, 'key', errors, 'is required: your operator key (OPERATOR_KEYS), not a caller API key');
    if (errors.length) throw invalid(errors, 'sign-in');
    const operator = findOperator(deps.operators, key as string);
    if (!operator) {
      deps.app.log.warn('console sign-in refused', { reason: 'not an operator key' });
      throw new ProblemError(401, 'unauthorized', 'Not an operator key', 'That key is not one of OPERATOR_KEYS. Caller API keys cannot sign in to the console.');
    }
    const { cookieValue, session } = issueSession(deps.secret, operator, key as string, now);
    deps.app.log.info('console sign-in', { operator: operator.name, role: operator.role });
    return json(200, { name: session.name, role: session.role, csrf: csrfToken(deps.secret, session) }, { 'set-cookie': sessionCookie(cookieValue, deps.secure, undefined, cookiePath) });
  }

  const session = readSession(deps.secret, cookieOf(headers, SESSION_COOKIE), deps.operators, now);
  if (!session) throw new ProblemError(401, 'unauthorized', 'Sign in', 'Sign in to the console with an operator key.');
  if (method !== 'GET') {
    sameOrigin(headers);
    if (!csrfValid(deps.secret, session, headers['x-csrf-token'])) throw new ProblemError(403, 'csrf', 'Missing or wrong CSRF token', 'Send the x-csrf-token the session gave; reload the page to get it again.');
  }

  if (api === 'session' && method === 'GET') return json(200, { name: session.name, role: session.role, csrf: csrfToken(deps.secret, session), systems: [...deps.app.modules.keys()] });
  if (api === 'logout' && method === 'POST') return json(200, { signedOut: true }, { 'set-cookie': sessionCookie('', deps.secure, 0, cookiePath) });

  const q = event.queryStringParameters ?? {};
  if (api === 'payments' && method === 'GET') {
    const limit = limitOf(q.limit);
    const page = q.cursor ? await deps.browse({ cursor: q.cursor, limit }) : await deps.browse({ filter: filterFrom(q, [...deps.app.modules.keys()], now), limit });
    return json(200, { payments: page.records.map(row), ...(page.cursor ? { cursor: page.cursor } : {}), requests: page.requests });
  }
  if (api === 'audit' && method === 'GET') {
    const page = await deps.audit.list({ limit: limitOf(q.limit), ...(q.cursor ? { cursor: q.cursor } : {}) });
    return json(200, { ...page, entries: page.entries.map(scrubbedEntry) });
  }
  if (api === 'overview' && method === 'GET') {
    const counts = await stuckCounts(deps);
    return json(200, { counts, ...(deps.overview ? { charts: await deps.overview(now) } : {}) });
  }
  if (api === 'limits' && method === 'GET') return json(200, { at: new Date(now).toISOString(), limits: await limits(deps, now) });
  if (api === 'bulk/preview' && method === 'POST') {
    requireOperator(session);
    return json(200, await bulkPreview(deps, bodyOf(event), now));
  }
  const m = /^payments\/([^/]+)\/([^/]+)(?:\/actions\/([^/]+))?$/.exec(api);
  if (m) {
    const system = decodeURIComponent(m[1] as string);
    const key = safeDecode(decodeURIComponent(m[2] as string));
    if (!m[3] && method === 'GET') return json(200, await detail(deps, system, key, now));
    if (m[3] && method === 'POST') {
      requireOperator(session);
      return act(deps, session, system, key, m[3], bodyOf(event), now);
    }
  }
  throw new ProblemError(404, 'not-found', 'Not found', `There is no console API ${method} /console/api/${api}.`);
}

function file(name: string, headers: Record<string, string | undefined>, prefix: string): APIGatewayProxyResult {
  const a = name === 'index.html' && prefix ? pageUnder(prefix) : asset(name);
  if (!a) throw new ProblemError(404, 'not-found', 'Not found', `There is no console file ${name}.`);
  const common = { ...SECURITY_HEADERS, etag: a.etag, 'cache-control': name === 'index.html' ? 'no-cache' : 'public, max-age=300' };
  if (headers['if-none-match'] === a.etag) return { statusCode: 304, headers: common, body: '' };
  return { statusCode: 200, headers: { 'content-type': a.type, ...common }, body: a.body };
}

/** The page with its links under the stage path (its ETag its own, so a browser never mixes the two). */
function pageUnder(prefix: string): Asset | undefined {
  const page = asset('index.html');
  if (!page) return undefined;
  const body = page.body.replaceAll('"/console/', `"${prefix}/console/`);
  return { ...page, body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"` };
}

/** A browser's cross-site request is refused even before the CSRF token is looked at. */
function sameOrigin(headers: Record<string, string | undefined>): void {
  const site = headers['sec-fetch-site'];
  if (site && site !== 'same-origin' && site !== 'none') throw new ProblemError(403, 'cross-site', 'Cross-site request refused', 'The console accepts changes from its own pages only.');
  const origin = headers.origin;
  const host = headers.host;
  if (origin && host && new URL(origin).host !== host) throw new ProblemError(403, 'cross-site', 'Cross-site request refused', 'The console accepts changes from its own pages only.');
}

function requireOperator(session: Session): void {
  if (session.role !== 'operator') throw new ProblemError(403, 'viewer-cannot-act', 'Viewers cannot act', `${session.name} signed in as a viewer: only an operator (OPERATOR_KEYS name:operator=key) may resolve, repost or redrive.`);
}

function limitOf(text: string | undefined): number {
  if (text === undefined || text === '') return 50;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 200) throw invalid([{ pointer: 'limit', detail: 'must be a whole number from 1 to 200' }], 'filter');
  return n;
}

async function findRecord(deps: ConsoleDeps, system: string, key: string): Promise<{ record: PaymentRecord; pk: string }> {
  const module = deps.app.modules.get(system);
  if (!module) throw new ProblemError(404, 'not-found', 'No such system', `"${system}" is not a system; use ${[...deps.app.modules.keys()].join(', ')}.`);
  const ids = module.routeKey(key);
  if (!ids) throw new ProblemError(404, 'not-found', 'Not found', `"${key}" is not a ${system} key.`);
  const pk = recordPk(system, ids.tenant, ids.key);
  const record = await deps.app.store.get(pk);
  if (!record) throw new ProblemError(404, 'not-found', 'Not found', `No ${system} payment with key "${key}".`);
  return { record, pk };
}

/** The record as the status route shows it, person identifiers hidden in free text too, with its timeline and what each action would do. */
async function detail(deps: ConsoleDeps, system: string, key: string, now: number) {
  const { record } = await findRecord(deps, system, key);
  const module = deps.app.modules.get(system);
  const view = publicView(record, module, deps.app.settings, now);
  const scrub = scrubberFor(record);
  const audit = (await deps.audit.list({ limit: 50, of: { system, key } })).entries.map((a) => ({ ...a, reason: scrub.text(a.reason), ...(a.evidence ? { evidence: scrub.text(a.evidence) } : {}) }));
  const history = view.history.map((h) => (h.detail !== undefined ? { ...h, detail: scrub.text(h.detail) } : h));
  const revisions = view.revisions?.map((r) => ({ ...r, reason: scrub.text(r.reason) }));
  const extra = record as PaymentRecord & { lastEvent?: unknown };
  return {
    payment: {
      ...view,
      ...(view.result ? { result: { ...view.result, body: scrub.value(view.result.body), ...(view.result.note !== undefined ? { note: scrub.text(view.result.note) } : {}) } } : {}),
      ...(view.error ? { error: { ...view.error, message: scrub.text(view.error.message) } } : {}),
      request: scrub.value(view.request),
      history,
      ...(revisions ? { revisions } : {}),
      ...(record.caller ? { caller: record.caller } : {}),
      ...(extra.lastEvent !== undefined ? { lastEvent: extra.lastEvent } : {}),
    },
    timeline: timelineOf({ history, ...(revisions ? { revisions } : {}), lastEvent: extra.lastEvent }, audit, await deps.paymentEvents?.(record)),
    actions: Object.fromEntries(ACTIONS.map((a) => [a, previewOperatorAction(record, a, now)])),
    audit,
  };
}

async function act(deps: ConsoleDeps, session: Session, system: string, key: string, action: string, body: Record<string, unknown>, now: number): Promise<APIGatewayProxyResult> {
  if (!(ACTIONS as readonly string[]).includes(action)) throw new ProblemError(404, 'not-found', 'No such action', `"${action}" is not an action; use ${ACTIONS.join(', ')}.`);
  const errors: FieldError[] = [];
  const reason = text(body, 'reason', errors, 'is required: why you do this, for the audit log');
  const resolving = action === 'resolve-posted' || action === 'resolve-not-posted';
  const evidence = text(body, 'evidence', errors, resolving ? 'is required: what you checked downstream' : undefined);
  const bulk = typeof body.bulk === 'string' ? body.bulk.slice(0, 40) : undefined;
  if (errors.length) throw invalid(errors, `${action} request`);
  const { record, pk } = await findRecord(deps, system, key);
  const preview = previewOperatorAction(record, action as OperatorAction, now);
  const base = { who: session.name, role: session.role, action, system, key, reason: reason as string, ...(evidence ? { evidence } : {}), mayHold: preview.mayHold, will: preview.will, ...(bulk ? { bulk } : {}) };
  if (!preview.allowed) {
    const entry = await deps.audit.append({ ...base, ok: false, result: `refused: ${preview.reason ?? 'not allowed'}`, status: record.status });
    throw new ProblemError(409, 'action-not-allowed', `Cannot ${action} this payment`, preview.reason ?? 'not allowed', undefined, { preview, audit: entry.id });
  }
  const op: OperatorDeps = { store: deps.app.store, queue: deps.app.queue, clock: deps.app.clock, fence: deps.fence };
  const by = `${session.name} (console)`;
  let done: OperatorResult;
  if (action === 'redrive') done = await redrive(op, pk, by);
  else if (action === 'repost') done = await repost(op, pk, by, evidence ?? (reason as string));
  else if (action === 'resolve-posted') done = await resolvePosted(op, pk, by, evidence as string);
  else done = await resolveNotPosted(op, pk, by, evidence as string);
  const entry: AuditEntry = await deps.audit.append(
    done.ok ? { ...base, ok: true, result: `now ${done.record.status}${action === 'repost' ? ` (revision ${done.record.revision})` : ''}`, status: done.record.status } : { ...base, ok: false, result: `refused: ${done.reason}`, status: record.status },
  );
  deps.app.log.info('operator action', { operator: session.name, action, system, ok: done.ok });
  if (!done.ok) throw new ProblemError(409, 'action-not-allowed', `Cannot ${action} this payment`, done.reason, undefined, { audit: entry.id });
  return json(200, { ok: true, action, system, key, status: done.record.status, revision: done.record.revision ?? 1, audit: entry });
}

const BULK_STATUSES: Record<'redrive' | 'repost', Status[]> = { redrive: ['held'], repost: ['failed', 'held', 'unknown'] };
/** A bulk run's list is at most this long: a larger one is narrowed by its filter first. */
const BULK_MAX = 1000;

/** What a bulk action would touch: the count and keys of the matching payments, and each system's pace. */
async function bulkPreview(deps: ConsoleDeps, body: Record<string, unknown>, now: number) {
  const action = body.action;
  if (action !== 'redrive' && action !== 'repost') throw invalid([{ pointer: '#/action', detail: 'must be redrive or repost' }], 'bulk preview');
  const raw = (body.filter && typeof body.filter === 'object' ? body.filter : {}) as Record<string, string | undefined>;
  const filter = filterFrom(raw, [...deps.app.modules.keys()], now);
  const accepted = BULK_STATUSES[action];
  const statuses = filter.statuses ? filter.statuses.filter((s) => accepted.includes(s)) : accepted;
  const items: { system: string; key: string; status: string }[] = [];
  let cursor: string | undefined;
  let pages = 0;
  if (statuses.length > 0) {
    do {
      const page = cursor ? await deps.browse({ cursor, limit: 200 }) : await deps.browse({ filter: { ...filter, statuses }, limit: 200 });
      for (const r of page.records) if (previewOperatorAction(r, action, now).allowed) items.push({ system: r.system, key: r.key, status: r.status });
      cursor = page.cursor;
      pages++;
    } while (cursor && items.length < BULK_MAX && pages < 50);
  }
  const rates: Record<string, number> = {};
  for (const s of new Set(items.map((i) => i.system))) {
    const module = deps.app.modules.get(s);
    rates[s] = (module && configuredRate(module)) ?? 1;
  }
  return { action, count: items.length, complete: !cursor || items.length < BULK_MAX, items: items.slice(0, BULK_MAX), ratePerSecond: rates, bulk: `bulk-${randomBytes(6).toString('hex')}` };
}

/**
 * Each system's rate limit as it stands (`GET /console/api/limits`): the ceiling this function is configured
 * with, the rate paced to now, what 429s taught and the next probe, a stated limit, a pause, the last 429.
 * Times as ISO strings. Each system apart: one whose configuration is broken shows what its limiter item
 * holds (`configInvalid`), one whose item cannot be read says so (`error`), and the others are shown.
 */
async function limits(deps: ConsoleDeps, now: number): Promise<Record<string, Record<string, number | string | boolean>>> {
  const out: Record<string, Record<string, number | string | boolean>> = {};
  await Promise.all(
    [...deps.app.modules.entries()].map(async ([name, module]) => {
      const configured = configuredRate(module);
      const invalid: Record<string, boolean> = configured === undefined ? { configInvalid: true } : {};
      try {
        // The store, not the pacer: a read of the pacer's own (refresh) could land after one of its writes and
        // put an older version back in its cache (npm start's console shares the intake's pacer).
        // An item not written yet (or by an earlier version) reads as the empty state: the ceiling, paced as is.
        out[name] = { ...limitStatusJson(limitStatus(await deps.limiter.read(name), configured, now)), ...invalid };
      } catch (err) {
        deps.app.log.warn('console: a limiter item could not be read', { system: name, error: err });
        out[name] = { ...(configured !== undefined ? { configured } : {}), ...invalid, error: `its limiter item could not be read (${(err as Error).name})` };
      }
    }),
  );
  return out;
}

/** Held, unknown and failed payments per system (the overview's counts): one listing of the open partition. */
async function stuckCounts(deps: ConsoleDeps): Promise<Record<string, Record<string, number>>> {
  const counts: Record<string, Record<string, number>> = {};
  for (const s of deps.app.modules.keys()) counts[s] = { held: 0, unknown: 0, failed: 0, retrying: 0, reconciling: 0 };
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = cursor ? await deps.browse({ cursor, limit: 200 }) : await deps.browse({ filter: { statuses: ['held', 'unknown', 'failed', 'retrying', 'reconciling'] }, limit: 200 });
    for (const r of page.records) {
      const c = (counts[r.system] ??= {});
      c[r.status] = (c[r.status] ?? 0) + 1;
    }
    cursor = page.cursor;
    pages++;
  } while (cursor && pages < 10);
  return counts;
}
