import { reopen } from '../../core/intake.js';
import { ACTIVE_STATUSES, recordPk, STATUSES, type PaymentRecord } from '../../core/types.js';
import type { AppDeps } from '../../deps.js';
import { stockholmDate } from '../../dates.js';
import { KONTANTANALYS, LATEST_RUN_KEY, RUN_KEY_PREFIX } from './describe.js';
import type { KontantanalysCheckpoints, KontantanalysRequest } from './index.js';
import { timelinessWithin } from './schema.js';

export { LATEST_RUN_KEY, RUN_KEY_PREFIX };

/** What one run did, counted over every caller's objects (RunSummary) or over one caller's (byCaller). */
export interface RunCounts {
  /** Objects the register received since the previous run, by what happened to them. */
  created: number;
  updated: number;
  matched: number;
  /** Objects the register already had, untouched since the previous run. */
  unchanged: number;
  /** Services whose timelinessDate was moved to their last confirmation (queued to be sent). */
  refreshed: number;
  /** Still retrying or reconciling when this run looked: woken, the queue carries on. */
  pending: number;
  failed: number;
  /** Keys that ended failed, held or unknown, for the operator. */
  failedKeys: string[];
}

export interface RunSummary extends RunCounts {
  startedAt: string;
  finishedAt: string;
  /**
   * The same counts per caller (the records' owners; `""` for records from before callers were kept),
   * so the run's summary route shows each caller its own objects only (issue 20 item 7).
   */
  byCaller: Record<string, RunCounts>;
}

export const emptyRunCounts = (): RunCounts => ({ created: 0, updated: 0, matched: 0, unchanged: 0, refreshed: 0, pending: 0, failed: 0, failedKeys: [] });

function action(record: PaymentRecord): string | undefined {
  return (record.result?.body as { action?: string } | undefined)?.action;
}

/** A page size for walking the status index; the walk is bounded so a run always ends. */
const PAGE = 200;
const MAX_PAGES = 5_000;

/** Every Kontantanalys record in `status`, through the status index (never a Scan), page by page. */
async function* inStatus(deps: AppDeps, status: PaymentRecord['status']): AsyncGenerator<PaymentRecord> {
  let cursor: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const got = await deps.store.list(KONTANTANALYS, status, { limit: PAGE, ...(cursor ? { cursor } : {}) });
    for (const r of got.records) if (!r.key.startsWith(RUN_KEY_PREFIX)) yield r;
    cursor = got.cursor;
    if (!cursor) return;
  }
  deps.log.warn('kontantanalys sync stopped paging at its bound', { status, pages: MAX_PAGES });
}

/**
 * The scheduled run (daily by default): wakes what is still pending, refreshes the timelinessDate of
 * every service whose data the integrator confirmed since the last one it sent, and records a run
 * summary readable at `GET /v1/payments/kontantanalys/run:latest`. It reads the records by status
 * through the status index and sends nothing itself: the Kontantanalys worker does, paced as usual.
 */
export async function runKontantanalysSync(deps: AppDeps, owner: string): Promise<RunSummary> {
  const startedAt = new Date(deps.clock()).toISOString();
  const summary: RunSummary = { startedAt, finishedAt: startedAt, ...emptyRunCounts(), byCaller: {} };
  // Each count goes to the whole run and to the record's owner.
  const count = (record: PaymentRecord, field: Exclude<keyof RunCounts, 'failedKeys'>) => {
    const own = (summary.byCaller[record.caller ?? ''] ??= emptyRunCounts());
    summary[field]++;
    own[field]++;
    if (field === 'failed') {
      summary.failedKeys.push(record.key);
      own.failedKeys.push(record.key);
    }
  };
  const previous = await deps.store.get(recordPk(KONTANTANALYS, 'default', LATEST_RUN_KEY));
  const since = previous?.createdAt === undefined ? 0 : Date.parse((previous.result?.body as RunSummary | undefined)?.startedAt ?? previous.createdAt);
  const today = stockholmDate(deps.clock());
  for (const status of STATUSES) {
    for await (const record of inStatus(deps, status)) {
      if (ACTIVE_STATUSES.includes(record.status)) {
        count(record, 'pending');
        await deps.queue.send({ pk: record.pk, system: KONTANTANALYS, reason: 'scheduled-run', now: true }, 0);
        continue;
      }
      if (record.status !== 'posted') {
        count(record, 'failed');
        continue;
      }
      const r = record.request as unknown as KontantanalysRequest;
      const cp = record.checkpoints as KontantanalysCheckpoints;
      // Clamped into the service's year and not after today (seed 001): a run on 1 January moves a
      // confirmation of 30 December to 1 January instead of sending last year's date.
      const date = cp.confirmedAt ? timelinessWithin(stockholmDate(Date.parse(cp.confirmedAt)), r.attributes.year, today) : undefined;
      if (r.resource === 'services' && r.attributes.timelinessDate === undefined && date && date !== cp.timelinessDate) {
        const queued = await reopen(deps, record.pk, { reason: `timelinessDate refreshed to ${date}, the last confirmation`, checkpoints: { timelinessDate: date } });
        if (queued) count(record, 'refreshed');
        else count(record, 'pending'); // someone is working on it: the next run refreshes it
        continue;
      }
      if (Date.parse(record.updatedAt) >= since) {
        const a = action(record);
        if (a === 'created') count(record, 'created');
        else if (a === 'matched') count(record, 'matched');
        else count(record, 'updated');
      } else count(record, 'unchanged');
    }
  }
  summary.finishedAt = new Date(deps.clock()).toISOString();
  await saveRun(deps, summary);
  deps.log.info('kontantanalys sync run', { ...summary, failedKeys: summary.failedKeys.length, by: owner });
  return summary;
}

async function saveRun(deps: AppDeps, summary: RunSummary): Promise<void> {
  const pk = recordPk(KONTANTANALYS, 'default', LATEST_RUN_KEY);
  const now = deps.clock();
  const body: PaymentRecord = {
    pk,
    system: KONTANTANALYS,
    tenant: 'default',
    key: LATEST_RUN_KEY,
    status: 'posted',
    version: 1,
    revision: 1,
    payloadHash: '-',
    request: {},
    attempts: 0,
    failures: 0,
    budgetFrom: now,
    checkpoints: {},
    result: { httpStatus: 200, body: summary },
    history: [],
    correlationId: 'scheduled',
    createdAt: summary.startedAt,
    updatedAt: summary.finishedAt,
    ttl: Math.floor(now / 1000) + 400 * 86_400,
  };
  const entry = {
    at: summary.finishedAt,
    event: 'run',
    detail: `created ${summary.created}, updated ${summary.updated}, matched ${summary.matched}, unchanged ${summary.unchanged}, refreshed ${summary.refreshed}, pending ${summary.pending}, failed ${summary.failed}`,
  };
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
