import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { decide, parseApiKeys, WEBHOOK_CALLER, type GateSettings } from '../../../shared/http/authorizer.js';

const SECRET = `whsec_${Buffer.from('unit-test-secret-unit-test-secret').toString('base64')}`;
const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);
const gate: GateSettings = { callers: new Set(['pos', 'pos-web']), usageKey: (c) => `paybridge-test-usage-${c}` };
const keys = parseApiKeys('pos=key-pos, pos-web = key-web ,bare-key,other=key-other');

/** Headers as a real Standard Webhooks sender makes them (the library the terminals' providers use). */
function signed(at = NOW, id = 'msg_1', body = '{"status":"PAID"}') {
  return { 'webhook-id': id, 'webhook-timestamp': String(Math.floor(at / 1000)), 'webhook-signature': new Webhook(SECRET).sign(id, new Date(at), body) };
}

describe('the API Gateway gate', () => {
  it("lets a known, named x-api-key through with its own caller's usage key", () => {
    expect(decide({ 'X-Api-Key': 'key-web' }, keys, NOW, gate)).toEqual({ allow: true, caller: 'pos-web', method: 'api-key', usageIdentifierKey: 'paybridge-test-usage-pos-web' });
    expect(decide({ 'x-api-key': 'key-pos' }, keys, NOW, gate)).toMatchObject({ allow: true, caller: 'pos' });
  });

  it('refuses an unknown key, an empty one, and a key whose caller has no usage plan', () => {
    expect(decide({ 'x-api-key': 'key-nope' }, keys, NOW, gate)).toEqual({ allow: false, reason: 'unknown x-api-key' });
    expect(decide({ 'x-api-key': '' }, keys, NOW, gate)).toMatchObject({ allow: false });
    expect(decide({ 'x-api-key': 'key-other' }, keys, NOW, gate)).toEqual({ allow: false, reason: 'x-api-key of a caller without a usage plan (other): add it to custom.api.callers' });
    const bare = decide({ 'x-api-key': 'bare-key' }, keys, NOW, gate);
    expect(bare).toMatchObject({ allow: false });
    // The reason is logged: a bare key is itself the secret and must not appear in it.
    expect(JSON.stringify(bare)).not.toContain('bare-key');
    expect(decide({ 'x-api-key': 'key-pos' }, [], NOW, gate)).toMatchObject({ allow: false });
  });

  it('never meters an x-api-key caller on the webhook plan, even if API_KEYS names one "webhooks"', () => {
    const sneaky = parseApiKeys(`${WEBHOOK_CALLER}=key-w`);
    expect(decide({ 'x-api-key': 'key-w' }, sneaky, NOW, { ...gate, callers: new Set([WEBHOOK_CALLER]) })).toMatchObject({ allow: false });
  });

  it('decides by the x-api-key alone when one is sent, as the function does', () => {
    expect(decide({ 'x-api-key': 'key-nope', ...signed() }, keys, NOW, gate)).toMatchObject({ allow: false, reason: 'unknown x-api-key' });
  });

  it('lets a complete, fresh Standard Webhooks header set through on the webhook plan (the function verifies the body)', () => {
    expect(decide(signed(), keys, NOW, gate)).toEqual({ allow: true, caller: WEBHOOK_CALLER, method: 'webhook', usageIdentifierKey: `paybridge-test-usage-${WEBHOOK_CALLER}` });
    expect(decide(signed(NOW - 4 * 60_000), keys, NOW, gate)).toMatchObject({ allow: true });
    // Rotation: the sender signs with several secrets, space-separated.
    const two = signed();
    expect(decide({ ...two, 'webhook-signature': `v1,${'A'.repeat(43)}= ${two['webhook-signature']}` }, keys, NOW, gate)).toMatchObject({ allow: true });
  });

  it('refuses incomplete, stale, future and malformed webhook headers, and nothing at all', () => {
    const ok = signed();
    expect(decide({ 'webhook-id': 'x' }, keys, NOW, gate)).toEqual({ allow: false, reason: 'incomplete webhook headers: missing webhook-timestamp, webhook-signature' });
    expect(decide(signed(NOW - 6 * 60_000), keys, NOW, gate)).toMatchObject({ allow: false, reason: expect.stringMatching(/tolerance 300 s/) });
    expect(decide(signed(NOW + 6 * 60_000), keys, NOW, gate)).toMatchObject({ allow: false });
    expect(decide({ ...ok, 'webhook-timestamp': '2026-11-22T12:00:00Z' }, keys, NOW, gate)).toMatchObject({ allow: false, reason: 'webhook-timestamp is not whole seconds' });
    expect(decide({ ...ok, 'webhook-signature': 'v1,not-base64!' }, keys, NOW, gate)).toMatchObject({ allow: false, reason: 'webhook-signature has no v1 signature' });
    expect(decide({ ...ok, 'webhook-signature': ok['webhook-signature'].replace('v1,', 'v2,') }, keys, NOW, gate)).toMatchObject({ allow: false });
    expect(decide({ ...ok, 'webhook-id': 'x'.repeat(257) }, keys, NOW, gate)).toMatchObject({ allow: false });
    expect(decide({}, keys, NOW, gate)).toEqual({ allow: false, reason: 'no x-api-key and no webhook signature' });
    expect(decide(null, keys, NOW, gate)).toMatchObject({ allow: false });
  });
});
