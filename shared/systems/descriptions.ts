import { brpDescription } from './brp/describe.js';
import { cambioDescription } from './cambio/describe.js';
import { kontantanalysDescription } from './kontantanalys/describe.js';
import { nifCorporateDescription, nifDescription, nifMembershipDescription } from './nif/describe.js';
import type { DescriptionFactory } from './types.js';

/**
 * Every system's description, in the status route's order: what the status route and the sweep know of
 * the systems they report on. Nothing here imports a client, a schema or undici (test/unit/bundles.test.ts).
 */
export const DESCRIPTIONS: readonly DescriptionFactory[] = [cambioDescription, nifMembershipDescription, nifCorporateDescription, nifDescription, brpDescription, kontantanalysDescription];
