import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../shared/config.js';
import type { PaymentRecord } from '../../../shared/core/types.js';
import { makeDispatcher } from '../../../shared/systems/http.js';
import { buildSystems, SYSTEM_NAMES } from '../../../shared/systems/registry.js';
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
});
