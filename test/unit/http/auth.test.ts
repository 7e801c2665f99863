import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { authenticate, type AuthSettings } from '../../../shared/http/auth.js';
import { bareKeyCaller, parseApiKeyEntries } from '../../../shared/http/callers.js';
import { ProblemError } from '../../../shared/http/problem.js';

const secret = (seed: string) => `whsec_${Buffer.from(seed.padEnd(32, '!')).toString('base64')}`;
const SECRET = secret('unit-test-secret');
const OLD = secret('terminal-old');
const NEW = secret('terminal-new');
const OTHER = secret('another-provider');
const settings: AuthSettings = { apiKeys: parseApiKeyEntries('key-a,pos=key-b'), webhookSecret: SECRET };

function signed(body: string, at = new Date(), id = 'msg_1', key = SECRET) {
  return {
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': new Webhook(key).sign(id, at, body),
  };
}

function rejects(fn: () => unknown, detail: RegExp) {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ProblemError);
    expect((err as ProblemError).status).toBe(401);
    expect((err as ProblemError).detail).toMatch(detail);
    return;
  }
  throw new Error('expected a 401');
}

describe('authenticate', () => {
  it('accepts any configured API key, and identifies it only by a hash', () => {
    const p = authenticate({ 'x-api-key': 'key-b' }, '', settings);
    expect(p.method).toBe('api-key');
    expect(p.id).not.toContain('key-b');
  });

  it('names the caller: the entry name of name=key, a hash of a bare key (never the key itself)', () => {
    expect(authenticate({ 'x-api-key': 'key-b' }, '', settings).caller).toBe('pos');
    const bare = authenticate({ 'x-api-key': 'key-a' }, '', settings).caller;
    expect(bare).toBe(bareKeyCaller('key-a'));
    expect(bare).toMatch(/^key:[0-9a-f]{16}$/);
    expect(bare).not.toContain('key-a');
  });

  it('refuses a wrong key, and any key when none is configured', () => {
    rejects(() => authenticate({ 'x-api-key': 'key-c' }, '', settings), /x-api-key is not valid/);
    rejects(() => authenticate({ 'x-api-key': '' }, '', settings), /x-api-key is not valid/);
    // "pos=key-b" is an entry, not a key: only its key part is accepted.
    rejects(() => authenticate({ 'x-api-key': 'pos=key-b' }, '', settings), /x-api-key is not valid/);
    rejects(() => authenticate({ 'x-api-key': 'key-a' }, '', { apiKeys: [] }), /x-api-key is not valid/);
  });

  it('accepts a valid Standard Webhooks signature over the raw body; a bare secret is sender "webhook"', () => {
    const body = '{"status":"PAID"}';
    expect(authenticate(signed(body), body, settings)).toMatchObject({ method: 'webhook', caller: 'webhook' });
  });

  it('rotation: the old and the new secret of one sender both verify, as that sender', () => {
    const rotating: AuthSettings = { apiKeys: [], webhookSecret: `terminal=${OLD}  terminal=${NEW}` };
    const body = '{"status":"PAID"}';
    expect(authenticate(signed(body, new Date(), 'm-old', OLD), body, rotating)).toMatchObject({ method: 'webhook', caller: 'terminal' });
    expect(authenticate(signed(body, new Date(), 'm-new', NEW), body, rotating)).toMatchObject({ method: 'webhook', caller: 'terminal' });
    // The secret retired from the list stops verifying.
    rejects(() => authenticate(signed(body, new Date(), 'm-old', OLD), body, { apiKeys: [], webhookSecret: `terminal=${NEW}` }), /No matching signature/);
  });

  it('several senders: each delivery is the caller whose secret signed it', () => {
    const two: AuthSettings = { apiKeys: [], webhookSecret: `${SECRET} adyen=${OTHER}` };
    const body = '{}';
    expect(authenticate(signed(body, new Date(), 'a', OTHER), body, two).caller).toBe('adyen');
    expect(authenticate(signed(body, new Date(), 'b', SECRET), body, two).caller).toBe('webhook');
  });

  it('refuses a changed body, a signature by another secret, and timestamps outside ±5 minutes', () => {
    const body = '{"status":"PAID"}';
    rejects(() => authenticate(signed(body), `${body} `, settings), /No matching signature/);
    const other = { ...signed(body), 'webhook-signature': new Webhook(OTHER).sign('msg_1', new Date(), body) };
    rejects(() => authenticate(other, body, settings), /No matching signature/);
    rejects(() => authenticate(signed(body, new Date(Date.now() - 6 * 60_000)), body, settings), /too old/);
    rejects(() => authenticate(signed(body, new Date(Date.now() + 6 * 60_000)), body, settings), /too new/);
    expect(authenticate(signed(body, new Date(Date.now() - 4 * 60_000)), body, settings).method).toBe('webhook');
  });

  it('leaves the body to the route: a signed body that is not JSON authenticates (the route answers 400)', () => {
    expect(authenticate(signed('not json'), 'not json', settings).method).toBe('webhook');
  });

  it('refuses webhooks when no secret is configured, incomplete headers, an over-long id, and nothing at all', () => {
    const body = '{}';
    rejects(() => authenticate(signed(body), body, { apiKeys: [] }), /no WEBHOOK_SECRET/);
    rejects(() => authenticate({ 'webhook-id': 'x' }, body, settings), /missing webhook-timestamp, webhook-signature/);
    rejects(() => authenticate(signed(body, new Date(), 'x'.repeat(257)), body, settings), /longer than 256/);
    rejects(() => authenticate({}, body, settings), /Send an x-api-key header/);
  });
});

describe('authenticate behind the API Gateway authorizer', () => {
  it("uses the gate's caller when it agrees with the key", () => {
    expect(authenticate({ 'x-api-key': 'key-b' }, '', settings, { caller: 'pos', method: 'api-key' })).toMatchObject({ method: 'api-key', caller: 'pos' });
  });

  it('refuses when the gate named another caller or method (API_KEYS changed between the two reads)', () => {
    rejects(() => authenticate({ 'x-api-key': 'key-b' }, '', settings, { caller: 'pos-web', method: 'api-key' }), /disagree about the caller/);
    rejects(() => authenticate({ 'x-api-key': 'key-b' }, '', settings, { caller: 'webhooks', method: 'webhook' }), /disagree/);
    rejects(() => authenticate({ 'x-api-key': 'key-a' }, '', settings, { caller: 'pos', method: 'api-key' }), /disagree/);
  });

  it("keeps the webhook's sender: the gate only names the shared webhook plan", () => {
    const body = '{}';
    const two: AuthSettings = { apiKeys: [], webhookSecret: `adyen=${OTHER}` };
    expect(authenticate(signed(body, new Date(), 'a', OTHER), body, two, { caller: 'webhooks', method: 'webhook' }).caller).toBe('adyen');
    rejects(() => authenticate(signed(body, new Date(), 'a', OTHER), body, two, { caller: 'adyen', method: 'api-key' }), /disagree/);
  });
});
