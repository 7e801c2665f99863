import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../shared/config.js';
import type { PaymentRecord } from '../../../shared/core/types.js';
import { makeDispatcher } from '../../../shared/systems/http.js';
import { DESCRIPTIONS } from '../../../shared/systems/descriptions.js';
import { buildSystems, MODULES, SYSTEM_NAMES } from '../../../shared/systems/registry.js';
import { ConfigError, type AttemptContext } from '../../../shared/systems/types.js';

const ctx: AttemptContext = { correlationId: 'c', record: { checkpoints: {} } as unknown as PaymentRecord, checkpoint: async () => undefined, signal: AbortSignal.timeout(5_000) };

describe('system registry and missing configuration', () => {
  const modules = buildSystems(parseConfig({}), makeDispatcher(), Date.now);

  it('registers every system DESIGN.md names', () => {
    expect([...modules.keys()].sort()).toEqual([...SYSTEM_NAMES].sort());
  });

  it.each([
    ['cambio', { status: 'PAID', contactId: 'x', paymentType: 'CASH' }, ['CAMBIO_TOKEN_URL', 'CAMBIO_CLIENT_ID', 'CAMBIO_CLIENT_SECRET', 'CAMBIO_SUBSCRIPTION_KEY']],
    ['nif', { payment: {} }, ['NIF_CLIENT_ID', 'NIF_CLIENT_SECRET']],
    ['nif-membership', { clubId: '1', payment: {} }, ['NIF_MEMBERSHIP_BASE_URL', 'NIF_SUBSCRIPTION_KEY', 'NIF_CLUB_TOKENS']],
    ['brp', {}, ['BRP_BASE_URL', 'BRP_API_KEY']],
    ['kontantanalys', { resource: 'templates', externalId: 'x', attributes: {} }, ['KONTANTANALYS_BASE_URL', 'KONTANTANALYS_USERNAME', 'KONTANTANALYS_PASSWORD']],
  ])('%s without credentials throws a ConfigError naming what to set (the engine holds the payment)', async (name, request, missing) => {
    const err = await modules.get(name)!.post(request, ctx).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).missing).toEqual(missing);
    expect((err as ConfigError).message).toContain(`set ${missing.join(', ')}`);
  });

  it('names every system twice, in the same order: its module factory and its description (issue 14)', () => {
    expect(MODULES.map((m) => m.system)).toEqual([...SYSTEM_NAMES]);
    expect(DESCRIPTIONS.map((d) => d.system)).toEqual([...SYSTEM_NAMES]);
  });

  it.each(SYSTEM_NAMES.map((name, i) => [name, i] as const))('%s: the module is its description plus the client (same name, policy, pace, keys, public view)', (name, i) => {
    const config = parseConfig({ CAMBIO_MAX_RPS: '7', BRP_MAX_RPS: '3' });
    const module = (MODULES[i] as (typeof MODULES)[number])(config, makeDispatcher(), Date.now);
    const described = (DESCRIPTIONS[i] as (typeof DESCRIPTIONS)[number])(config);
    expect([module.name, described.name]).toEqual([name, name]);
    expect(module.ambiguity).toBe(described.ambiguity);
    expect(module.maxPerSecond()).toBe(described.maxPerSecond());
    for (const key of ['4568:3248', 'providers:x', 'run:latest', 'plain', ':x', '']) expect(module.routeKey(key), key).toEqual(described.routeKey(key));
    const request = { contactId: 'c', patient: 'p', clubId: '1', payment: { amountOre: 45_000, personId: 1 }, resource: 'services', externalId: 'e', attributes: {} };
    expect(module.publicRequest(request)).toEqual(described.publicRequest(request));
  });
});
