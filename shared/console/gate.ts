import type { Operator } from '../http/operators.js';
import { cookieOf, readSession, SESSION_COOKIE } from './session.js';

/**
 * The console's own API Gateway authorizer decides with this (functions/console-authorize.ts; docs/aws.md,
 * "The console"). Pure, so it is tested without AWS; the console function checks the same session again
 * itself (shared/console/handler.ts), so this gate refuses early and never lets anything in on its own.
 *
 * - A request carrying a caller's credential (`x-api-key`, a Standard Webhooks signature) is refused: the
 *   console takes operator sessions only, and a caller's key must not even reach its function.
 * - The page, its files and the sign-in are open: they show nothing but the sign-in form, and signing in
 *   is how a session begins (the function checks the operator key, as it does under npm start).
 * - Everything else (the console's API, each action) needs a valid session cookie: signed with the key
 *   derived from LOG_HASH_KEY, unexpired, and for an operator key OPERATOR_KEYS still holds.
 */

export type GateVerdict = { allow: true; kind: 'open' } | { allow: true; kind: 'session'; operator: Operator } | { allow: false; reason: string };

/** What reaches the console without a session: the page, its files, the sign-in. */
export function isOpen(method: string, path: string): boolean {
  if (method === 'GET') return path === '/console' || path === '/console/' || path === '/console/index.html' || /^\/console\/assets\/[A-Za-z0-9._-]+$/.test(path);
  return method === 'POST' && path === '/console/api/login';
}

const CALLER_HEADERS = ['x-api-key', 'webhook-signature', 'webhook-id'];

export function consoleGate(
  req: { method: string; path: string; headers: Record<string, string | undefined> | null | undefined },
  session: { secret: Buffer; operators: Map<string, Operator> } | undefined,
  now: number,
): GateVerdict {
  const headers: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(req.headers ?? {})) headers[k.toLowerCase()] = v ?? undefined;
  if (CALLER_HEADERS.some((h) => headers[h] !== undefined)) return { allow: false, reason: 'a caller credential (x-api-key or a webhook signature): the console takes operator sessions only' };
  if (isOpen(req.method, req.path)) return { allow: true, kind: 'open' };
  if (!session) return { allow: false, reason: 'no session can be checked' };
  const found = readSession(session.secret, cookieOf(headers, SESSION_COOKIE), session.operators, now);
  if (!found) return { allow: false, reason: 'no valid console session' };
  return { allow: true, kind: 'session', operator: { name: found.name, role: found.role } };
}
