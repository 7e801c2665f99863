import type { Outcome, PaymentRecord } from './types.js';

/**
 * What a person reading the log needs when a payment stops for an operator (`held`, `unknown`): the
 * downstream's own reason and what to check (issue 22: these were INFO lines with neither). Variable
 * names only, never their values.
 */
const CREDENTIALS: Record<string, string> = {
  cambio: 'CAMBIO_CLIENT_ID, CAMBIO_CLIENT_SECRET, CAMBIO_SUBSCRIPTION_KEY (and CAMBIO_TOKEN_URL)',
  'nif-membership': 'NIF_CLUB_TOKENS (the ClubId\'s token) and NIF_SUBSCRIPTION_KEY',
  'nif-corporate': 'NIF_CLUB_TOKENS (the ClubId\'s token) and NIF_SUBSCRIPTION_KEY',
  nif: 'NIF_CLIENT_ID, NIF_CLIENT_SECRET (and NIF_TOKEN_URL / NIF_ENVIRONMENT)',
  brp: 'BRP_API_KEY, BRP_USERNAME, BRP_PASSWORD',
  kontantanalys: 'KONTANTANALYS_USERNAME, KONTANTANALYS_PASSWORD',
};

export function parkedLogFields(system: string, record: PaymentRecord, outcome: Outcome): { reason: string; check: string } {
  const reason = 'message' in outcome ? outcome.message : (record.error?.message ?? record.status);
  const prefix = system.toUpperCase().replace(/-/g, '_');
  if (record.status === 'unknown') {
    return { reason, check: `whether ${system} holds it: then paybridge payments resolve ${system} KEY --posted or --not-posted, or the console` };
  }
  if (record.error?.kind === 'budget') return { reason, check: `the downstream is back, then redrive (retry budget: RETRY_BUDGET_HOURS or ${prefix}_RETRY_BUDGET_HOURS)` };
  if (record.error?.kind === 'config') return { reason, check: `${prefix} settings in the environment, then redrive` };
  return { reason, check: `${CREDENTIALS[system] ?? `${prefix} credentials`}, then redrive` };
}
