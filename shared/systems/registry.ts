import type { Dispatcher } from 'undici';
import type { Config } from '../config.js';
import { brpModule } from './brp/index.js';
import { cambioModule } from './cambio/index.js';
import { kontantanalysModule } from './kontantanalys/index.js';
import { nifModules } from './nif/index.js';
import type { SystemModule } from './types.js';

/** System names as the status route spells them (DESIGN.md), defined with their configuration. */
export { SYSTEM_NAMES } from '../config.js';

export function buildSystems(config: Config, dispatcher: Dispatcher, clock: () => number): Map<string, SystemModule> {
  const modules = [cambioModule(config, dispatcher, clock), ...nifModules(config, dispatcher, clock), brpModule(config, dispatcher, clock), kontantanalysModule(config, dispatcher, clock)];
  return new Map(modules.map((m) => [m.name, m]));
}
