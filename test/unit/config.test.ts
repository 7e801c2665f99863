import { GetParametersByPathCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { SSMProvider } from '@aws-lambda-powertools/parameters/ssm';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { budgetsBySystem, parseConfig } from '../../shared/config.js';
import { bareKeyCaller } from '../../shared/http/callers.js';
import { awsDeps } from '../../shared/deps.js';
import { NO_TABLE } from '../../shared/store/port.js';
import { PARAMETERS_MAX_AGE_SECONDS, resolveParameters } from '../../shared/secrets.js';
import { ConfigError } from '../../shared/systems/types.js';

const ssm = mockClient(SSMClient);

describe('configuration', () => {
  afterEach(() => {
    ssm.reset();
    vi.useRealTimers();
  });

  it('has documented defaults', () => {
    const c = parseConfig({});
    expect(c).toMatchObject({ PORT: 3000, TABLE_NAME: 'paybridge-records', RECORD_TTL_DAYS: 400, LEASE_SECONDS: 90, MAX_AGE_HOURS: 72, INDEX_SHARDS: 8 });
    expect(c.system('cambio')).toMatchObject({ CAMBIO_BASE_URL: 'https://api.openservices.cambio.se', CAMBIO_MAX_RPS: 10 });
    expect(c.apiKeys).toEqual([]);
  });

  it('splits API_KEYS and ignores empty values; a bare key is its own caller, named by a hash', () => {
    expect(parseConfig({ API_KEYS: ' a , b,,', WEBHOOK_SECRET: '' }).apiKeys).toEqual([
      { caller: bareKeyCaller('a'), key: 'a' },
      { caller: bareKeyCaller('b'), key: 'b' },
    ]);
  });

  it('API_KEYS entries name=key name their caller; base64 padding is part of a bare key', () => {
    const padded = 'c2VjcmV0LWtleS1vZi1wb3M=';
    expect(parseConfig({ API_KEYS: `pos=k1, pos-web = k2=x, ${padded}` }).apiKeys).toEqual([
      { caller: 'pos', key: 'k1' },
      { caller: 'pos-web', key: 'k2=x' },
      { caller: bareKeyCaller(padded), key: padded },
    ]);
  });

  it('refuses caller names a usage plan cannot carry, and one key given to two callers, never echoing a key', () => {
    expect(() => parseConfig({ API_KEYS: 'Pos Web=secret-1' })).toThrow(/API_KEYS: entry 1 names its caller "Pos Web"/);
    let error: Error | undefined;
    try {
      parseConfig({ API_KEYS: 'pos=secret-2,web=secret-2' });
    } catch (err) {
      error = err as Error;
    }
    expect(error?.message).toMatch(/API_KEYS: entry 2 gives a key that entry for pos already has to another caller/);
    expect(error?.message).not.toContain('secret-2');
  });

  it('WEBHOOK_SECRET entries name their sender; one secret may not belong to two senders', () => {
    const a = `whsec_${Buffer.from('a'.repeat(24)).toString('base64')}`;
    const b = `whsec_${Buffer.from('b'.repeat(24)).toString('base64')}`;
    const c = `whsec_${Buffer.from('c'.repeat(24)).toString('base64')}`;
    expect(parseConfig({ WEBHOOK_SECRET: `adyen=${a} adyen=${b} ${c}` }).WEBHOOK_SECRET).toBe(`adyen=${a} adyen=${b} ${c}`);
    expect(() => parseConfig({ WEBHOOK_SECRET: `adyen=${a} nets=${a}` })).toThrow(/gives the secret of sender adyen to sender nets/);
    expect(() => parseConfig({ WEBHOOK_SECRET: `Adyen=${a}` })).toThrow(/WEBHOOK_SECRET/);
  });

  it('fails fast on a common variable, naming it', () => {
    expect(() => parseConfig({ PORT: 'eighty' })).toThrow(/PORT/);
    expect(() => parseConfig({ WEBHOOK_SECRET: 'plain' })).toThrow(/WEBHOOK_SECRET: must be Standard Webhooks secrets/);
    expect(() => parseConfig({ RETRY_QUEUE_URLS: '{"cambio":"nope"}' })).toThrow(/RETRY_QUEUE_URLS/);
  });

  it('accepts two webhook secrets at once (rotation)', () => {
    const two = `whsec_${Buffer.from('a'.repeat(24)).toString('base64')} whsec_${Buffer.from('b'.repeat(24)).toString('base64')}`;
    expect(parseConfig({ WEBHOOK_SECRET: two }).WEBHOOK_SECRET).toBe(two);
  });

  it('one bad system value breaks that system only, lazily, naming the variable (issue 10)', () => {
    const c = parseConfig({ NIF_CLUB_TOKENS: '{not json', CAMBIO_MAX_RPS: '5' });
    expect(c.system('cambio').CAMBIO_MAX_RPS).toBe(5);
    expect(c.system('nif').NIF_MAX_RPS).toBe(10);
    let error: unknown;
    try {
      c.system('nif-membership');
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toMatch(/nif-membership configuration is invalid: NIF_CLUB_TOKENS: must be a JSON object/);
    expect((error as ConfigError).missing).toEqual(['NIF_CLUB_TOKENS']);
    expect(() => c.system('nif-corporate')).toThrow(/NIF_CLUB_TOKENS/);
  });

  it('reads per-system retry budgets where given, skipping systems whose configuration is invalid', () => {
    const c = parseConfig({ CAMBIO_RETRY_BUDGET_HOURS: '24', BRP_MAX_RPS: 'lots', NIF_RETRY_BUDGET_HOURS: '1' });
    expect(budgetsBySystem(c)).toEqual({ cambio: 24 * 3_600_000, nif: 3_600_000 });
  });

  it("reads SSM by path: common and this function's groups only, decrypted; env wins", async () => {
    ssm.on(GetParametersByPathCommand).callsFake((input: { Path: string; NextToken?: string }) => {
      if (input.Path === '/paybridge/prod/common') return { Parameters: [{ Name: '/paybridge/prod/common/API_KEYS', Value: 'ssm-keys' }, { Name: '/paybridge/prod/common/LOG_HASH_KEY', Value: 'k' }] };
      if (input.Path === '/paybridge/prod/nif' && !input.NextToken) return { Parameters: [{ Name: '/paybridge/prod/nif/NIF_CLIENT_ID', Value: 'id' }], NextToken: 'p2' };
      if (input.Path === '/paybridge/prod/nif') return { Parameters: [{ Name: '/paybridge/prod/nif/NIF_CLIENT_SECRET', Value: 'secret' }] };
      throw new Error(`unexpected path ${input.Path}`);
    });
    const env = await resolveParameters({ SECRETS_PARAMETER_PREFIX: '/paybridge/prod', API_KEYS: 'from-env' }, ['nif', 'nif'], new SSMProvider({ awsSdkV3Client: new SSMClient({ region: 'eu-north-1' }) }));
    expect(env).toMatchObject({ API_KEYS: 'from-env', LOG_HASH_KEY: 'k', NIF_CLIENT_ID: 'id', NIF_CLIENT_SECRET: 'secret' });
    const calls = ssm.commandCalls(GetParametersByPathCommand).map((c) => c.args[0].input);
    expect(calls.map((c) => c.Path)).toEqual(['/paybridge/prod/common', '/paybridge/prod/nif', '/paybridge/prod/nif']);
    expect(calls.every((c) => c.WithDecryption === true && c.Recursive === false)).toBe(true);
  });

  it('reads exactly SECRETS_PARAMETER_PATHS when given, and trusts what it read for five minutes', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    ssm.on(GetParametersByPathCommand).callsFake((input: { Path: string }) => ({ Parameters: [{ Name: `${input.Path}/API_KEYS`, Value: `keys@${Date.now()}` }] }));
    const provider = new SSMProvider({ awsSdkV3Client: new SSMClient({ region: 'eu-north-1' }) });
    const env = { SECRETS_PARAMETER_PREFIX: '/paybridge/prod', SECRETS_PARAMETER_PATHS: '/paybridge/prod/common, /paybridge/prod/brp' };
    const first = await resolveParameters(env, ['cambio'], provider);
    expect(ssm.commandCalls(GetParametersByPathCommand).map((c) => c.args[0].input.Path)).toEqual(['/paybridge/prod/common', '/paybridge/prod/brp']);
    vi.advanceTimersByTime((PARAMETERS_MAX_AGE_SECONDS - 1) * 1000);
    expect(await resolveParameters(env, ['cambio'], provider)).toEqual(first);
    expect(ssm.commandCalls(GetParametersByPathCommand)).toHaveLength(2);
    vi.advanceTimersByTime(2000);
    const renewed = await resolveParameters(env, ['cambio'], provider);
    expect(ssm.commandCalls(GetParametersByPathCommand)).toHaveLength(4);
    expect(renewed.API_KEYS).not.toBe(first.API_KEYS);
  });

  it('deployed deps: rebuilt only when a refreshed parameter changed, keeping the table, the queue and the pacer', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    let keys = 'pos=k1';
    let messageKey = 'm'.repeat(64);
    ssm.on(GetParametersByPathCommand).callsFake((input: { Path: string }) => ({
      Parameters: [
        { Name: `${input.Path}/API_KEYS`, Value: keys },
        { Name: `${input.Path}/LOG_HASH_KEY`, Value: 'a-deployed-hash-key-of-32-chars!' },
        { Name: `${input.Path}/RETRY_MESSAGE_KEY`, Value: messageKey },
      ],
    }));
    const table = vi.fn(() => NO_TABLE);
    const queue = vi.fn(() => ({ send: async () => undefined }));
    const getDeps = awsDeps({ env: { SECRETS_PARAMETER_PREFIX: '/paybridge/deps', SECRETS_PARAMETER_PATHS: '/paybridge/deps/common', LOG_LEVEL: 'silent' }, table, queue });
    const first = await getDeps();
    expect(first.auth.apiKeys).toEqual([{ caller: 'pos', key: 'k1' }]);
    keys = 'pos=k2';
    expect(await getDeps()).toBe(first);
    vi.advanceTimersByTime(PARAMETERS_MAX_AGE_SECONDS * 1000 + 1000);
    const renewed = await getDeps();
    expect(renewed).not.toBe(first);
    expect(renewed.auth.apiKeys).toEqual([{ caller: 'pos', key: 'k2' }]);
    expect(renewed.pacer).toBe(first.pacer);
    expect(renewed.store).toBe(first.store);
    expect(renewed.queue).toBe(first.queue);
    expect(table).toHaveBeenCalledTimes(1);
    // A rotated RETRY_MESSAGE_KEY reaches what the container signs with: the queue is made again (issue 20 item 4).
    messageKey = `${'n'.repeat(64)} ${'m'.repeat(64)}`;
    vi.advanceTimersByTime(PARAMETERS_MAX_AGE_SECONDS * 1000 + 1000);
    const rotated = await getDeps();
    expect(rotated.messageKeys).toEqual({ sign: 'n'.repeat(64), verify: ['n'.repeat(64), 'm'.repeat(64)] });
    expect(queue).toHaveBeenCalledTimes(2);
    expect(rotated.queue).not.toBe(renewed.queue);
    vi.advanceTimersByTime(PARAMETERS_MAX_AGE_SECONDS * 1000 + 1000);
    expect(await getDeps()).toBe(rotated);
    expect(ssm.commandCalls(GetParametersByPathCommand)).toHaveLength(4);
  });

  it('does not call SSM without a prefix', async () => {
    expect(await resolveParameters({ API_KEYS: 'x' }, ['cambio'])).toEqual({ API_KEYS: 'x' });
    expect(ssm.calls()).toHaveLength(0);
  });
});

describe('CALLER_SCOPES (issue 20, item 5)', () => {
  const SECRET = Buffer.from('a-terminal-secret-32-bytes-long!').toString('base64');
  const env = { API_KEYS: 'alice=key-of-alice-1234,bob=key-of-bob-5678', WEBHOOK_SECRET: `till=whsec_${SECRET}` };

  it('absent: no caller has a scope, so every caller may use everything, as before', () => {
    expect(parseConfig(env).callerScopes.size).toBe(0);
  });

  it('names each caller\'s systems, NIF ClubIds and Kontantanalys keys', () => {
    const c = parseConfig({ ...env, CALLER_SCOPES: JSON.stringify({ alice: { systems: ['nif-membership', 'kontantanalys'], nifClubs: ['4568', 16235], kontantanalysKeys: ['alice-*'] }, till: { systems: ['cambio'] } }) });
    expect(c.callerScopes.get('alice')).toEqual({ systems: ['nif-membership', 'kontantanalys'], nifClubs: ['4568', '16235'], kontantanalysKeys: ['alice-*'] });
    expect(c.callerScopes.get('till')).toEqual({ systems: ['cambio'] });
    expect(c.callerScopes.get('bob')).toBeUndefined();
  });

  it.each([
    ['not JSON', '{alice:', /CALLER_SCOPES: must be a JSON object/],
    ['an array', '[]', /CALLER_SCOPES: must be a JSON object/],
    ['an unknown system', JSON.stringify({ alice: { systems: ['paypal'] } }), /CALLER_SCOPES: alice\.systems\.0: .*cambio/],
    ['a ClubId that is not one', JSON.stringify({ alice: { nifClubs: ['club-1'] } }), /CALLER_SCOPES: alice\.nifClubs\.0: /],
    ['a misspelt member', JSON.stringify({ alice: { system: ['cambio'] } }), /CALLER_SCOPES: alice: .*system/],
    ['a caller no key or secret names (a typo would leave the real caller unrestricted)', JSON.stringify({ alcie: { systems: ['cambio'] } }), /CALLER_SCOPES: names caller "alcie", which no API_KEYS or WEBHOOK_SECRET entry names/],
    ['a key pattern with a * inside', JSON.stringify({ alice: { kontantanalysKeys: ['a*b'] } }), /CALLER_SCOPES: alice\.kontantanalysKeys\.0: /],
  ])('refuses %s, naming the variable and never a key', (_what, text, message) => {
    expect(() => parseConfig({ ...env, CALLER_SCOPES: text })).toThrow(message);
    try {
      parseConfig({ ...env, CALLER_SCOPES: text });
    } catch (err) {
      for (const secret of ['key-of-alice-1234', 'key-of-bob-5678', SECRET]) expect((err as Error).message).not.toContain(secret);
    }
  });
});
