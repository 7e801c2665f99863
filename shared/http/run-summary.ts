import type { PaymentRecord } from '../core/types.js';
import { KONTANTANALYS, LATEST_RUN_KEY } from '../systems/kontantanalys/describe.js';
import type { RunCounts, RunSummary } from '../systems/kontantanalys/sync.js';
import type { Principal } from './auth.js';
import { statusPath } from './payments.js';

/** Whether a record is the scheduled Kontantanalys run's summary (which no caller owns). */
export function isRunSummary(record: Pick<PaymentRecord, 'system' | 'key'>): boolean {
  return record.system === KONTANTANALYS && record.key === LATEST_RUN_KEY;
}

const NO_COUNTS: RunCounts = { created: 0, updated: 0, matched: 0, unchanged: 0, refreshed: 0, pending: 0, failed: 0, failedKeys: [] };

/**
 * The run's summary as one caller may see it (issue 20 item 7): the counts and failed keys of its own
 * objects, plus those of records from before callers were kept (visible to every caller, as on the
 * status route). The run's totals and its history's per-run counts cover every caller: left out. A
 * summary written before per-caller counts existed shows no keys at all rather than everyone's.
 */
export function runSummaryFor<T extends { result?: { body?: unknown }; history: unknown[] }>(view: T, principal: Principal): T {
  const summary = view.result?.body as Partial<RunSummary> | undefined;
  if (!summary || typeof summary !== 'object') return view;
  const parts = [summary.byCaller?.[principal.caller], summary.byCaller?.['']].filter((c): c is RunCounts => c !== undefined);
  const own: RunCounts = { ...NO_COUNTS, failedKeys: [] };
  for (const part of parts) {
    for (const field of ['created', 'updated', 'matched', 'unchanged', 'refreshed', 'pending', 'failed'] as const) own[field] += part[field];
    own.failedKeys.push(...part.failedKeys);
  }
  const history = (view.history as { at: string; event: string }[]).map((h) => ({ at: h.at, event: h.event }));
  return { ...view, result: { ...view.result, body: { startedAt: summary.startedAt, finishedAt: summary.finishedAt, ...own } }, history };
}

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
