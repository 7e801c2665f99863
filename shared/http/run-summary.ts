import { KONTANTANALYS, LATEST_RUN_KEY } from '../systems/kontantanalys/describe.js';
import { statusPath } from './payments.js';

/**
 * `GET /v1/payments/kontantanalys/run:latest` before the scheduled run has ever run: 200 with status
 * `no run yet` rather than the 404 of a payment never received (issue 15: the route looked broken
 * for a day after every deploy). Undefined for any other key.
 */
export function noRunYet(system: string, key: string | undefined) {
  if (system !== KONTANTANALYS || key !== LATEST_RUN_KEY) return undefined;
  return {
    system,
    key,
    status: 'no run yet' as const,
    detail:
      'The scheduled Kontantanalys run (kontantanalysSync) has not run yet: it runs daily unless KONTANTANALYS_SYNC_SCHEDULE set another schedule at deploy (locally every KONTANTANALYS_SYNC_INTERVAL_SECONDS, a day by default). Its summary appears here after its first run; until then every PUT is sent as it arrives.',
    history: [],
    statusUrl: statusPath(system, key),
  };
}
