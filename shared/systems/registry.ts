import type { Dispatcher } from 'undici';
import type { Config } from '../config.js';
import { brpModule } from './brp/index.js';
import { cambioModule } from './cambio/index.js';
import { kontantanalysModule } from './kontantanalys/index.js';
import { nifCorporateModule, nifMembershipModule, nifModule } from './nif/index.js';
import type { ModuleFactory, SystemModule } from './types.js';

/** System names as the status route spells them (DESIGN.md), defined with their configuration. */
export { SYSTEM_NAMES } from '../config.js';

/**
 * Every system's module factory, in the status route's order. Only what runs every system imports this
 * (the local stack, the CLI): a deployed handler names its own system's factory, so its bundle holds one client.
 */
export const MODULES: readonly ModuleFactory[] = [cambioModule, nifMembershipModule, nifCorporateModule, nifModule, brpModule, kontantanalysModule];

export function buildSystems(config: Config, dispatcher: Dispatcher, clock: () => number): Map<string, SystemModule> {
  return new Map(MODULES.map((make) => [make.system as string, make(config, dispatcher, clock)]));
}
