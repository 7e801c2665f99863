import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Operator } from '../http/operators.js';

/**
 * The console's session: a signed cookie, nothing kept on the server (the console runs as a Lambda in
 * AWS). It names the operator and their role, and carries a fingerprint of the key they signed in with:
 * a session is valid only while OPERATOR_KEYS still holds that key for that name and role, so removing
 * a key ends its sessions. The CSRF token is derived from the session's random id (signed double
 * submit): a page of another origin can neither read it nor forge it.
 */

export const SESSION_COOKIE = 'pb_console';
export const SESSION_HOURS = 8;

export interface Session {
  name: string;
  role: Operator['role'];
  /** Fingerprint of the key signed in with. */
  fp: string;
  /** Epoch ms. */
  exp: number;
  sid: string;
}

const mac = (secret: Buffer, text: string) => createHmac('sha256', secret).update(text, 'utf8').digest('base64url');

/** The session key, derived from LOG_HASH_KEY (already a secret in every stage) so no new secret is needed. */
export function sessionSecret(logHashKey: string): Buffer {
  return createHmac('sha256', logHashKey).update('paybridge console session v1', 'utf8').digest();
}

export function keyFingerprint(secret: Buffer, key: string): string {
  return mac(secret, `key:${key}`).slice(0, 22);
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

export function issueSession(secret: Buffer, operator: Operator, key: string, now: number): { cookieValue: string; session: Session } {
  const session: Session = { name: operator.name, role: operator.role, fp: keyFingerprint(secret, key), exp: now + SESSION_HOURS * 3_600_000, sid: randomBytes(16).toString('base64url') };
  const body = Buffer.from(JSON.stringify(session), 'utf8').toString('base64url');
  return { cookieValue: `${body}.${mac(secret, body)}`, session };
}

/** The session a cookie carries, if its signature holds, it has not expired and its key is still configured. */
export function readSession(secret: Buffer, value: string | undefined, keys: Map<string, Operator>, now: number): Session | undefined {
  if (!value) return undefined;
  const dot = value.indexOf('.');
  if (dot <= 0) return undefined;
  const body = value.slice(0, dot);
  if (!same(value.slice(dot + 1), mac(secret, body))) return undefined;
  let session: Session;
  try {
    session = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Session;
  } catch {
    return undefined;
  }
  if (typeof session.exp !== 'number' || session.exp <= now) return undefined;
  for (const [key, op] of keys) {
    if (op.name === session.name && op.role === session.role && same(keyFingerprint(secret, key), session.fp)) return session;
  }
  return undefined;
}

export function csrfToken(secret: Buffer, session: Session): string {
  return mac(secret, `csrf:${session.sid}`);
}

export function csrfValid(secret: Buffer, session: Session, presented: string | undefined): boolean {
  return presented !== undefined && same(presented, csrfToken(secret, session));
}

export function cookieOf(headers: Record<string, string | undefined>, name: string): string | undefined {
  const raw = headers.cookie ?? headers.Cookie;
  if (!raw) return undefined;
  for (const part of raw.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * The cookie header: HttpOnly, SameSite=Strict; Secure wherever the console is on HTTPS (AWS). Its path is
 * the console's as the browser sees it: `/console`, or `/<stage>/console` on an API Gateway stage URL.
 */
export function sessionCookie(value: string, secure: boolean, maxAgeSeconds = SESSION_HOURS * 3600, path = '/console'): string {
  return [`${SESSION_COOKIE}=${value}`, `Path=${path}`, 'HttpOnly', 'SameSite=Strict', `Max-Age=${maxAgeSeconds}`, ...(secure ? ['Secure'] : [])].join('; ');
}
