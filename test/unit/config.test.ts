import { GetParametersCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { PARAMETER_VARIABLES, parseConfig, resolveSecrets } from '../../shared/config.js';

const ssm = mockClient(SSMClient);

describe('configuration', () => {
  afterEach(() => ssm.reset());

  it('has documented defaults', () => {
    const c = parseConfig({});
    expect(c).toMatchObject({ PORT: 3000, TABLE_NAME: 'paybridge-records', CAMBIO_BASE_URL: 'https://api.openservices.cambio.se', CAMBIO_MAX_RPS: 10, RECORD_TTL_DAYS: 400 });
    expect(c.apiKeys).toEqual([]);
  });

  it('splits API_KEYS and ignores empty values', () => {
    expect(parseConfig({ API_KEYS: ' a , b,,', WEBHOOK_SECRET: '' }).apiKeys).toEqual(['a', 'b']);
  });

  it('fails fast naming the variable', () => {
    expect(() => parseConfig({ PORT: 'eighty' })).toThrow(/PORT/);
    expect(() => parseConfig({ WEBHOOK_SECRET: 'plain' })).toThrow(/WEBHOOK_SECRET: must be a Standard Webhooks secret/);
    expect(() => parseConfig({ CAMBIO_BASE_URL: 'not a url' })).toThrow(/CAMBIO_BASE_URL/);
  });

  it('reads secrets from SSM under the prefix, in chunks of 10, decrypted; env wins', async () => {
    ssm.on(GetParametersCommand).callsFake((input: { Names: string[] }) => ({
      Parameters: input.Names.filter((n) => !n.endsWith('CAMBIO_MAX_RPS')).map((n) => ({ Name: n, Value: `ssm:${n.split('/').pop()}` })),
    }));
    const env = await resolveSecrets({ SECRETS_PARAMETER_PREFIX: '/paybridge/prod', API_KEYS: 'from-env' }, new SSMClient({ region: 'eu-north-1' }));
    expect(env.API_KEYS).toBe('from-env');
    expect(env.CAMBIO_CLIENT_SECRET).toBe('ssm:CAMBIO_CLIENT_SECRET');
    expect(env.CAMBIO_MAX_RPS).toBeUndefined();
    const calls = ssm.commandCalls(GetParametersCommand);
    const asked = calls.flatMap((c) => c.args[0].input.Names ?? []);
    expect(asked).toHaveLength(PARAMETER_VARIABLES.length - 1);
    expect(asked.every((n) => n.startsWith('/paybridge/prod/'))).toBe(true);
    expect(calls.every((c) => c.args[0].input.WithDecryption === true && (c.args[0].input.Names?.length ?? 0) <= 10)).toBe(true);
  });

  it('does not call SSM without a prefix', async () => {
    expect(await resolveSecrets({ API_KEYS: 'x' })).toEqual({ API_KEYS: 'x' });
    expect(ssm.calls()).toHaveLength(0);
  });
});
