import { readFileSync } from 'node:fs';
import { GetParametersCommand, SSMClient } from '@aws-sdk/client-ssm';
import type { APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { awsAuthorizerDeps, makeHandler } from '../../../functions/authorize.js';
import { createLogger } from '../../../shared/log.js';

const ssm = mockClient(SSMClient);
const fixture = JSON.parse(readFileSync(new URL('../../../events/authorizer-request.json', import.meta.url), 'utf8')) as APIGatewayRequestAuthorizerEvent;
const AT_FIXTURE = Number(fixture.headers?.['webhook-timestamp']) * 1000;
const ENV = { API_KEYS_PARAMETER: '/paybridge/test/common/API_KEYS', CALLERS: 'pos,pos-web', USAGE_KEY_PREFIX: 'paybridge-test-usage-key-', AWS_REGION: 'eu-north-1' };
const withKey = (key: string): APIGatewayRequestAuthorizerEvent => ({ ...fixture, headers: { 'x-api-key': key } });

/** The deployed wiring against a mocked SSM, with the clock at the fixture's signing time. */
function handler(env: Record<string, string | undefined> = ENV) {
  const deps = awsAuthorizerDeps(env, new SSMClient({ region: 'eu-north-1' }));
  return makeHandler(() => ({ ...deps(), clock: () => AT_FIXTURE, log: createLogger({}, 'silent') }));
}

describe('the authorize function', () => {
  afterEach(() => ssm.reset());

  it("reads API_KEYS from SSM (decrypted) and returns an Allow for this method, the caller's usage key and context", async () => {
    ssm.on(GetParametersCommand).resolves({ Parameters: [{ Name: ENV.API_KEYS_PARAMETER, Value: 'pos=key-pos,pos-web=key-web' }] });
    const out = await handler()(withKey('key-web'));
    expect(ssm.commandCalls(GetParametersCommand)[0]?.args[0].input).toEqual({ Names: ['/paybridge/test/common/API_KEYS'], WithDecryption: true });
    expect(out).toEqual({
      principalId: 'api-key:pos-web',
      policyDocument: { Version: '2012-10-17', Statement: [{ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: fixture.methodArn }] },
      context: { caller: 'pos-web', method: 'api-key' },
      usageIdentifierKey: 'paybridge-test-usage-key-pos-web',
    });
  });

  it('lets a signed terminal delivery through on the webhook plan without asking SSM for a secret it cannot use', async () => {
    ssm.on(GetParametersCommand).resolves({ Parameters: [] });
    const out = await handler()(fixture);
    expect(out).toMatchObject({ principalId: 'webhook:webhooks', usageIdentifierKey: 'paybridge-test-usage-key-webhooks', context: { method: 'webhook' } });
  });

  it('throws Unauthorized (API Gateway: 401) for an unknown key and for a missing API_KEYS parameter', async () => {
    ssm.on(GetParametersCommand).resolves({ Parameters: [] });
    await expect(handler()(withKey('key-pos'))).rejects.toThrow(/^Unauthorized$/);
    await expect(handler()({ ...fixture, headers: {} })).rejects.toThrow(/^Unauthorized$/);
  });

  it('re-reads SSM only after five minutes, and keeps the last keys if SSM then fails', async () => {
    ssm.on(GetParametersCommand).resolvesOnce({ Parameters: [{ Value: 'pos=key-pos' }] }).rejects(new Error('ThrottlingException'));
    const h = handler();
    await h(withKey('key-pos'));
    await h(withKey('key-pos'));
    expect(ssm.commandCalls(GetParametersCommand)).toHaveLength(1);
    const realNow = Date.now;
    Date.now = () => realNow() + 6 * 60_000;
    try {
      await expect(h(withKey('key-pos'))).resolves.toMatchObject({ principalId: 'api-key:pos' });
      expect(ssm.commandCalls(GetParametersCommand)).toHaveLength(2);
    } finally {
      Date.now = realNow;
    }
  });

  it('keeps the last keys through an SSM outage for a bounded time only: a revoked key does not live on (issue 20 item 12)', async () => {
    ssm.on(GetParametersCommand).resolvesOnce({ Parameters: [{ Value: 'pos=key-pos' }] }).rejects(new Error('ThrottlingException'));
    const h = handler();
    await h(withKey('key-pos'));
    const realNow = Date.now;
    try {
      Date.now = () => realNow() + 14 * 60_000;
      await expect(h(withKey('key-pos'))).resolves.toMatchObject({ principalId: 'api-key:pos' });
      // Past API_KEYS_MAX_STALE (15 minutes since the last successful read): on main the same keys, for as long as SSM failed.
      Date.now = () => realNow() + 16 * 60_000;
      await expect(h(withKey('key-pos'))).rejects.toThrow(/API_KEYS could not be read for 16 minutes/);
      // A signed delivery needs no API key: it still passes to the function, which verifies it.
      await expect(h({ ...fixture, headers: { ...fixture.headers } })).resolves.toMatchObject({ principalId: 'webhook:webhooks' });
    } finally {
      Date.now = realNow;
    }
  });

  it('fails naming the variable when the deployment left one out', async () => {
    await expect(handler({ ...ENV, API_KEYS_PARAMETER: undefined })(fixture)).rejects.toThrow(/API_KEYS_PARAMETER is required/);
    await expect(handler({ ...ENV, CALLERS: undefined })(fixture)).rejects.toThrow(/CALLERS is required/);
    await expect(handler({ ...ENV, CALLERS: 'pos,Bad Name' })(fixture)).rejects.toThrow(/invalid caller name "Bad Name"/);
  });
});
