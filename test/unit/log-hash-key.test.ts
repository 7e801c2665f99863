import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetParametersByPathCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../../shared/config.js';
import { cambioModule } from '../../shared/systems/cambio/index.js';
import { awsDeps } from '../../shared/deps.js';
import { startStack, localLogHashKey } from '../../shared/local/stack.js';
import { hashId, logHashKey } from '../../shared/log.js';

/** The key of the personal-id hashes in logs (issue 12): never a constant anyone could try. */
const ssm = mockClient(SSMClient);
const dir = mkdtempSync(join(tmpdir(), 'paybridge-hash-key-'));
const KEY = 'a-log-hash-key-of-32-characters!';

describe('LOG_HASH_KEY', () => {
  let saved: string | undefined;
  beforeEach(() => {
    saved = process.env.LOG_HASH_KEY;
    delete process.env.LOG_HASH_KEY;
  });
  afterEach(() => {
    if (saved === undefined) delete process.env.LOG_HASH_KEY;
    else process.env.LOG_HASH_KEY = saved;
    ssm.reset();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('without one, hashes are keyed by a random key of this process, not by a constant', () => {
    const constant = createHmac('sha256', 'paybridge').update('8675682').digest('hex').slice(0, 16);
    expect(hashId('8675682')).not.toBe(constant);
    expect(logHashKey()).toMatch(/^[0-9a-f]{64}$/);
    // Stable within the process, so one payment's log lines still match each other.
    expect(hashId('8675682')).toBe(hashId('8675682'));
    process.env.LOG_HASH_KEY = KEY;
    expect(hashId('8675682')).toBe(createHmac('sha256', KEY).update('8675682').digest('hex').slice(0, 16));
  });

  it('a deployed function refuses to start without one, naming the parameter to create', () => {
    expect(() => parseConfig({ SECRETS_PARAMETER_PREFIX: '/paybridge/prod' })).toThrow(/LOG_HASH_KEY is required in a deployed stage and did not arrive: create \/paybridge\/prod\/common\/LOG_HASH_KEY/);
    expect(() => parseConfig({ SECRETS_PARAMETER_PREFIX: '/paybridge/prod', LOG_HASH_KEY: 'short' })).toThrow(/LOG_HASH_KEY must be at least 16 characters/);
    expect(parseConfig({ SECRETS_PARAMETER_PREFIX: '/paybridge/prod', LOG_HASH_KEY: KEY, RETRY_MESSAGE_KEY: 'm'.repeat(64) }).SECRETS_PARAMETER_PREFIX).toBe('/paybridge/prod');
    // Locally (no SSM prefix) none is needed: a random one is used.
    expect(() => parseConfig({})).not.toThrow();
  });

  it('in AWS: when SSM holds no LOG_HASH_KEY, the deps (and so every handler) fail with that message', async () => {
    ssm.on(GetParametersByPathCommand).callsFake((input: { Path: string }) =>
      input.Path === '/paybridge/prod/common' ? { Parameters: [{ Name: '/paybridge/prod/common/API_KEYS', Value: 'pos=k' }] } : { Parameters: [] },
    );
    await expect(awsDeps({ modules: [cambioModule], env: { SECRETS_PARAMETER_PREFIX: '/paybridge/prod', AWS_REGION: 'eu-north-1' } })()).rejects.toThrow(/LOG_HASH_KEY is required/);
  });

  it('in AWS: a rotated key reaches a warm container at its next parameter refresh', async () => {
    let current = KEY;
    ssm.on(GetParametersByPathCommand).callsFake((input: { Path: string }) =>
      input.Path === '/paybridge/rotate/common'
        ? { Parameters: [{ Name: '/paybridge/rotate/common/LOG_HASH_KEY', Value: current }, { Name: '/paybridge/rotate/common/RETRY_MESSAGE_KEY', Value: 'm'.repeat(64) }] }
        : { Parameters: [] },
    );
    const env = { prefix: process.env.SECRETS_PARAMETER_PREFIX, region: process.env.AWS_REGION };
    process.env.SECRETS_PARAMETER_PREFIX = '/paybridge/rotate';
    process.env.AWS_REGION = 'eu-north-1';
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const deps = awsDeps({ modules: [] });
      await deps();
      expect(process.env.LOG_HASH_KEY).toBe(KEY);
      current = 'a-rotated-key-of-32-characters!!';
      // Past the parameters' cache (five minutes): the container reads them again.
      vi.setSystemTime(Date.now() + 301_000);
      await deps();
      // On main the key it had written into the environment counted as an override, and stayed.
      expect(process.env.LOG_HASH_KEY).toBe(current);
    } finally {
      vi.useRealTimers();
      if (env.prefix === undefined) delete process.env.SECRETS_PARAMETER_PREFIX;
      else process.env.SECRETS_PARAMETER_PREFIX = env.prefix;
      if (env.region === undefined) delete process.env.AWS_REGION;
      else process.env.AWS_REGION = env.region;
    }
  });

  it('the local stack makes a random key once and keeps it (owner-only), so hashes survive a restart', () => {
    const file = join(dir, 'nested', 'log-hash-key');
    const first = localLogHashKey(file);
    expect(first).toMatch(/^[0-9a-f]{64}$/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(localLogHashKey(file)).toBe(first);
    expect(localLogHashKey(join(dir, 'another'))).not.toBe(first);
  });

  it('npm start wiring: the stack hashes with the kept key', async () => {
    const file = join(dir, 'stack-key');
    const stack = await startStack({ port: 0, sweepIntervalMs: false, bootSweep: false, kontantanalysSyncIntervalMs: false, logHashKeyFile: file, env: { LOG_LEVEL: 'silent' } });
    try {
      expect(process.env.LOG_HASH_KEY).toBe(readFileSync(file, 'utf8').trim());
    } finally {
      await stack.close();
    }
  });
});
