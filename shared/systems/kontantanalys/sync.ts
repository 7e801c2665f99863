import { processRecord, reopen } from '../../core/engine.js';
import { ACTIVE_STATUSES, recordPk, type PaymentRecord } from '../../core/types.js';
import type { AppDeps } from '../../deps.js';
import { stockholmDate } from '../../dates.js';
import { KONTANTANALYS, type KontantanalysCheckpoints, type KontantanalysRequest } from './index.js';
import { timelinessWithin } from './schema.js';

export const RUN_KEY_PREFIX = 'run:';
export const LATEST_RUN_KEY = `${RUN_KEY_PREFIX}latest`;

export interface RunSummary {
  startedAt: string;
  finishedAt: string;
  created: number;
  updated: number;
  matched: number;
  unchanged: number;
  /** Services whose timelinessDate was moved to their last confirmation. */
  refreshed: number;
  /** Still retrying or reconciling after this run (rate limits, outages): the queue carries on. */
  pending: number;
  failed: number;
  /** Keys that ended failed, held or unknown, for the operator. */
  failedKeys: string[];
}

function action(record: PaymentRecord): string | undefined {
  return (record.result?.body as { action?: string } | undefined)?.action;
}

/**
 * The scheduled run (daily by default): sends what is still pending, refreshes the timelinessDate of
 * every service whose data the integrator confirmed since the last one it sent, and records a run
 * summary readable at `GET /v1/payments/kontantanalys/run:latest`.
 */
export async function runKontantanalysSync(deps: AppDeps, owner: string): Promise<RunSummary> {
  const startedAt = new Date(deps.clock()).toISOString();
  const summary: RunSummary = { startedAt, finishedAt: startedAt, created: 0, updated: 0, matched: 0, unchanged: 0, refreshed: 0, pending: 0, failed: 0, failedKeys: [] };
  const today = stockholmDate(deps.clock());
  const records = (await deps.store.scan(`${KONTANTANALYS}#`)).filter((r) => !r.key.startsWith(RUN_KEY_PREFIX));
  const tally = (after: PaymentRecord | undefined, done: (r: PaymentRecord) => void) => {
    if (!after) return;
    if (after.status === 'posted') done(after);
    else if (ACTIVE_STATUSES.includes(after.status)) summary.pending++;
    else {
      summary.failed++;
      summary.failedKeys.push(after.key);
    }
  };
  for (const record of records) {
    if (ACTIVE_STATUSES.includes(record.status)) {
      await processRecord(deps, record.pk, owner);
      tally(await deps.store.get(record.pk), (r) => {
        const a = action(r);
        if (a === 'created') summary.created++;
        else if (a === 'matched') summary.matched++;
        else summary.updated++;
      });
      continue;
    }
    if (record.status !== 'posted') {
      tally(record, () => undefined);
      continue;
    }
    const r = record.request as unknown as KontantanalysRequest;
    const cp = record.checkpoints as KontantanalysCheckpoints;
    // Clamped into the service's year and not after today (seed 001): a run on 1 January moves a
    // confirmation of 30 December to 1 January instead of sending last year's date.
    const confirmed = cp.confirmedAt ? timelinessWithin(stockholmDate(Date.parse(cp.confirmedAt)), r.attributes.year, today) : undefined;
    if (r.resource === 'services' && r.attributes.timelinessDate === undefined && confirmed && confirmed !== cp.timelinessDate) {
      const after = await reopen(deps, record.pk, { owner, reason: `timelinessDate refreshed to ${confirmed}, the last confirmation`, checkpoints: { timelinessDate: confirmed } });
      if (after) tally(after, () => summary.refreshed++);
      else summary.pending++; // an attempt held the lease: the next run refreshes it
    } else {
      summary.unchanged++;
    }
  }
  summary.finishedAt = new Date(deps.clock()).toISOString();
  await saveRun(deps, summary);
  deps.log.info('kontantanalys sync run', { ...summary, failedKeys: summary.failedKeys.length });
  return summary;
}

async function saveRun(deps: AppDeps, summary: RunSummary): Promise<void> {
  const pk = recordPk(KONTANTANALYS, 'default', LATEST_RUN_KEY);
  const now = deps.clock();
  const body: PaymentRecord = {
    pk, system: KONTANTANALYS, tenant: 'default', key: LATEST_RUN_KEY, status: 'posted', version: 1, payloadHash: '-', request: {},
    attempts: 0, failures: 0, checkpoints: {}, result: { httpStatus: 200, body: summary }, history: [],
    correlationId: 'scheduled', createdAt: summary.startedAt, updatedAt: summary.finishedAt, ttl: Math.floor(now / 1000) + 400 * 86_400,
  };
  const entry = { at: summary.finishedAt, event: 'run', detail: `created ${summary.created}, updated ${summary.updated}, matched ${summary.matched}, unchanged ${summary.unchanged}, refreshed ${summary.refreshed}, pending ${summary.pending}, failed ${summary.failed}` };
  for (let i = 0; i < 3; i++) {
    const existing = await deps.store.get(pk);
    if (!existing) {
      if ((await deps.store.claim({ ...body, history: [entry] })).claimed) return;
      continue;
    }
    if (await deps.store.replace({ ...body, createdAt: existing.createdAt, history: [...existing.history, entry].slice(-50) }, existing.version)) return;
  }
  deps.log.warn('kontantanalys run summary could not be saved after 3 tries');
}
