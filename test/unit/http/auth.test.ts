import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { authenticate } from '../../../shared/http/auth.js';
import { ProblemError } from '../../../shared/http/problem.js';

const SECRET = `whsec_${Buffer.from('unit-test-secret-unit-test-secret').toString('base64')}`;
const settings = { apiKeys: ['key-a', 'key-b'], webhookSecret: SECRET };

function signed(body: string, at = new Date(), id = 'msg_1') {
  return {
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': new Webhook(SECRET).sign(id, at, body),
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

  it('refuses a wrong key, and any key when none is configured', () => {
    rejects(() => authenticate({ 'x-api-key': 'key-c' }, '', settings), /x-api-key is not valid/);
    rejects(() => authenticate({ 'x-api-key': '' }, '', settings), /x-api-key is not valid/);
    rejects(() => authenticate({ 'x-api-key': 'key-a' }, '', { apiKeys: [] }), /x-api-key is not valid/);
  });

  it('accepts a valid Standard Webhooks signature over the raw body', () => {
    const body = '{"status":"PAID"}';
    expect(authenticate(signed(body), body, settings).method).toBe('webhook');
  });

  it('refuses a changed body, a signature by another secret, and timestamps outside ±5 minutes', () => {
    const body = '{"status":"PAID"}';
    rejects(() => authenticate(signed(body), `${body} `, settings), /No matching signature/);
    const other = { ...signed(body), 'webhook-signature': new Webhook(`whsec_${Buffer.from('another-secret-another-secret!!').toString('base64')}`).sign('msg_1', new Date(), body) };
    rejects(() => authenticate(other, body, settings), /No matching signature/);
    rejects(() => authenticate(signed(body, new Date(Date.now() - 6 * 60_000)), body, settings), /too old/);
    rejects(() => authenticate(signed(body, new Date(Date.now() + 6 * 60_000)), body, settings), /too new/);
    expect(authenticate(signed(body, new Date(Date.now() - 4 * 60_000)), body, settings).method).toBe('webhook');
  });

  it('refuses webhooks when no secret is configured, incomplete headers, and nothing at all', () => {
    const body = '{}';
    rejects(() => authenticate(signed(body), body, { apiKeys: [] }), /no WEBHOOK_SECRET/);
    rejects(() => authenticate({ 'webhook-id': 'x' }, body, settings), /missing webhook-timestamp, webhook-signature/);
    rejects(() => authenticate({}, body, settings), /Send an x-api-key header/);
  });
});
