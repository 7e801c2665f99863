import { recordPk, type PaymentRecord } from '../core/types.js';
import type { SystemModule } from '../systems/types.js';
import { UsageError } from './io.js';

/**
 * The system names, as config.ts's SYSTEM_NAMES spells them. Repeated here because config.ts loads
 * zod and every system's schema, which `payments list` and `--help` do not need (issue 15: a CLI call
 * must answer in well under a second); test/unit/cli/systems.test.ts fails if the two lists differ.
 */
export const CLI_SYSTEMS = ['cambio', 'nif-membership', 'nif-corporate', 'nif', 'brp', 'kontantanalys'] as const;

export function assertSystem(system: string): void {
  if (!(CLI_SYSTEMS as readonly string[]).includes(system)) throw new UsageError(`unknown system "${system}"; known: ${CLI_SYSTEMS.join(', ')}`);
}

/**
 * One system's module, loaded on demand (its schema, client and undici come with it): only commands
 * that turn a status-route key into a record, or show a request, need one. It is built with an empty
 * configuration: the CLI never posts, and routeKey and publicRequest read no configuration.
 */
export async function systemModule(system: string): Promise<SystemModule> {
  assertSystem(system);
  const [{ parseConfig }, { makeDispatcher }] = await Promise.all([import('../config.js'), import('../systems/http.js')]);
  const config = parseConfig({});
  const dispatcher = makeDispatcher();
  const clock = Date.now;
  let found: SystemModule | undefined;
  if (system === 'cambio') found = (await import('../systems/cambio/index.js')).cambioModule(config, dispatcher, clock);
  else if (system === 'brp') found = (await import('../systems/brp/index.js')).brpModule(config, dispatcher, clock);
  else if (system === 'kontantanalys') found = (await import('../systems/kontantanalys/index.js')).kontantanalysModule(config, dispatcher, clock);
  else found = (await import('../systems/nif/index.js')).nifModules(config, dispatcher, clock).find((m) => m.name === system);
  if (!found) throw new Error(`no module for system ${system}`);
  return found;
}

/** The record behind a status-route key, as the route itself finds it (the module's own routeKey). */
export async function recordPkOf(system: string, key: string): Promise<{ pk: string; module: SystemModule; alternative?: string }> {
  const module = await systemModule(system);
  // A key copied from a status URL (`payments show` prints one) is percent-encoded: `4568%3Aext`. The
  // key as typed is looked up first; its decoded form is the alternative when the two differ.
  const decoded = percentDecoded(key);
  const ids = module.routeKey(key);
  const decodedIds = decoded !== undefined ? module.routeKey(decoded) : undefined;
  if (!ids && !decodedIds) throw new UsageError(`"${key}" is not a ${system} key`);
  if (!ids && decodedIds) return { pk: recordPk(system, decodedIds.tenant, decodedIds.key), module };
  const pk = recordPk(system, (ids as { tenant: string }).tenant, (ids as { key: string }).key);
  return { pk, module, ...(decodedIds ? { alternative: recordPk(system, decodedIds.tenant, decodedIds.key) } : {}) };
}

/** The key with its percent-escapes decoded, when it has any and they are valid. */
function percentDecoded(key: string): string | undefined {
  if (!/%[0-9A-Fa-f]{2}/.test(key)) return undefined;
  try {
    const d = decodeURIComponent(key);
    return d === key ? undefined : d;
  } catch {
    return undefined;
  }
}

/** The record behind a key as typed, or as decoded from its percent-encoded form. */
export async function findRecord(store: { get(pk: string): Promise<PaymentRecord | undefined> }, system: string, key: string): Promise<{ pk: string; module: SystemModule; record: PaymentRecord | undefined }> {
  const found = await recordPkOf(system, key);
  let record = await store.get(found.pk);
  if (!record && found.alternative) {
    record = await store.get(found.alternative);
    if (record) return { pk: found.alternative, module: found.module, record };
  }
  return { pk: found.pk, module: found.module, record };
}
