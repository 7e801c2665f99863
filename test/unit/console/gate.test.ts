import { describe, expect, it } from 'vitest';
import { consoleGate } from '../../../shared/console/gate.js';
import { issueSession, sessionSecret } from '../../../shared/console/session.js';
import { parseOperatorKeys } from '../../../shared/http/operators.js';

/** The console's own authorizer (functions/console-authorize.ts) decides with consoleGate: what passes to the console function. */

const KEY = 'olga-operator-key-0123456789';
const NOW = Date.parse('2026-12-07T04:00:00Z');
const secret = sessionSecret('gate-test-log-hash-key-0123');
const operators = parseOperatorKeys(`olga=${KEY}`);
const cookie = `pb_console=${issueSession(secret, { name: 'olga', role: 'operator' }, KEY, NOW).cookieValue}`;
const session = { secret, operators };

describe('the console gate', () => {
  it.each<[string, string, string, Record<string, string>, boolean]>([
    ['the page', 'GET', '/console', {}, true],
    ['its files', 'GET', '/console/assets/app.js', {}, true],
    ['the sign-in', 'POST', '/console/api/login', {}, true],
    ['the API without a session', 'GET', '/console/api/payments', {}, false],
    ['an action without a session', 'POST', '/console/api/payments/cambio/k/actions/redrive', {}, false],
    ['the API with a session', 'GET', '/console/api/payments', { cookie }, true],
    ['an action with a session (the function checks its CSRF token)', 'POST', '/console/api/payments/cambio/k/actions/redrive', { Cookie: cookie }, true],
    ['a forged cookie', 'GET', '/console/api/payments', { cookie: 'pb_console=e30.forged' }, false],
    ['a caller key at the sign-in', 'POST', '/console/api/login', { 'X-Api-Key': 'pb_caller_key' }, false],
    ['a caller key beside a valid session', 'GET', '/console/api/payments', { cookie, 'x-api-key': 'pb_caller_key' }, false],
    ['a webhook signature on the page', 'GET', '/console', { 'webhook-signature': 'v1,abc' }, false],
    ['a path outside the files', 'GET', '/console/assets/../api/payments', {}, false],
  ])('%s: %s', (_what, method, path, headers, allowed) => {
    expect(consoleGate({ method, path, headers }, session, NOW).allow).toBe(allowed);
  });

  it('names the operator of a session, and refuses it once expired or once its key is gone from OPERATOR_KEYS', () => {
    expect(consoleGate({ method: 'GET', path: '/console/api/audit', headers: { cookie } }, session, NOW)).toEqual({ allow: true, kind: 'session', operator: { name: 'olga', role: 'operator' } });
    expect(consoleGate({ method: 'GET', path: '/console/api/audit', headers: { cookie } }, session, NOW + 9 * 3_600_000).allow).toBe(false);
    const rotated = { secret, operators: parseOperatorKeys('olga=another-operator-key-0123456789') };
    expect(consoleGate({ method: 'GET', path: '/console/api/audit', headers: { cookie } }, rotated, NOW).allow).toBe(false);
    // Without the parameters (SSM could not be read), only what needs no session passes.
    expect(consoleGate({ method: 'GET', path: '/console/api/audit', headers: { cookie } }, undefined, NOW).allow).toBe(false);
    expect(consoleGate({ method: 'GET', path: '/console', headers: {} }, undefined, NOW).allow).toBe(true);
  });
});
