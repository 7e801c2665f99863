import type { EngineSettings } from '../core/lifecycle.js';
import type { HistoryEntry, PaymentRecord, RecordError, RevisionSummary } from '../core/types.js';
import type { SystemModule } from '../systems/types.js';
import { age, duration, iso, shorten, table, when } from './format.js';
import { UsageError } from './io.js';
import type { Run } from './args.js';
import { scrubberFor } from './personal.js';
import { findRecord } from './systems.js';

/** A downstream's body is shown on one line, cut here: `--json` has all of it. */
const BODY_WIDTH = 200;

/**
 * The retry budget as the engine computes it from the environment this command runs in (the same
 * variables `npm start` reads; the default 72 h when unset). A stage configured otherwise has its own.
 */
async function budgetSettings(): Promise<EngineSettings> {
  const [{ budgetsBySystem, parseConfig }, { DEFAULT_SETTINGS }] = await Promise.all([import('../config.js'), import('../core/lifecycle.js')]);
  const config = parseConfig(process.env);
  return { ...DEFAULT_SETTINGS, budgetMs: (config.RETRY_BUDGET_HOURS ?? config.MAX_AGE_HOURS) * 3_600_000, budgetBySystem: budgetsBySystem(config) };
}

/**
 * The record as the status route shows it (its `publicView`: the request through the module's
 * `publicRequest`), with person identifiers hidden in the downstream's texts, its body, the history
 * and the evidence operators gave.
 */
export async function shownRecord(record: PaymentRecord, module: SystemModule, now: number) {
  const { publicView } = await import('../http/payments.js');
  const view = publicView(record, module, await budgetSettings(), now);
  const scrub = scrubberFor(record);
  const error = (e: RecordError): RecordError => ({ ...e, message: scrub.text(e.message) });
  return {
    ...view,
    ...(view.result ? { result: { ...view.result, body: scrub.value(view.result.body), ...(view.result.note !== undefined ? { note: scrub.text(view.result.note) } : {}) } } : {}),
    ...(view.error ? { error: error(view.error) } : {}),
    request: scrub.value(view.request) as Record<string, unknown>,
    history: view.history.map((h: HistoryEntry) => (h.detail !== undefined ? { ...h, detail: scrub.text(h.detail) } : h)),
    ...(view.revisions ? { revisions: view.revisions.map((r: RevisionSummary) => ({ ...r, reason: scrub.text(r.reason), ...(r.error ? { error: error(r.error) } : {}) })) } : {}),
  };
}

type Shown = Awaited<ReturnType<typeof shownRecord>>;

function errorLine(e: RecordError): string {
  // An operator's decision says so itself ("resolved as not posted by ..."): no kind in front of it.
  if (e.kind === 'resolved') return e.message;
  const http = e.httpStatus ? `, HTTP ${e.httpStatus}` : '';
  return `${e.kind}${http}: ${e.code ? `${e.code}: ` : ''}${e.message}`;
}

function valueText(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** Label-value lines, the values lined up; empty values left out. */
function fields(pairs: [string, string | undefined][], indent = '  '): string[] {
  const shown = pairs.filter((p): p is [string, string] => p[1] !== undefined && p[1] !== '');
  const width = Math.max(0, ...shown.map(([k]) => k.length));
  return shown.map(([k, v]) => `${indent}${k.padEnd(width)}  ${v}`);
}

export function render(v: Shown, now: number): string[] {
  const lines = [`${v.system} ${v.key}: ${v.status}${v.revision > 1 ? `, revision ${v.revision}` : ''}`];
  const schedule = 'schedule' in v ? v.schedule : undefined;
  lines.push(
    ...fields([
      ['created', when(v.createdAt, now)],
      ['updated', when(v.updatedAt, now)],
      ['attempts', String(v.attempts)],
      ['next try', schedule?.nextAttemptAt ? when(schedule.nextAttemptAt, now) : undefined],
      ['failed in a row', schedule ? String(schedule.failuresInARow) : undefined],
      ['budget left', schedule ? `${duration(schedule.budgetLeftSeconds * 1000)} (until ${iso(schedule.budgetEndsAt)})` : undefined],
      ['error', v.error ? errorLine(v.error) : undefined],
      // HTTP status 0: no downstream answer, an operator's decision (resolve --posted); its note says so.
      ['result', v.result ? (v.result.httpStatus === 0 ? (v.result.note ?? 'recorded by an operator; nothing was sent') : `HTTP ${v.result.httpStatus}${v.result.note ? `: ${v.result.note}` : ''}`) : undefined],
      ['response', v.result && v.result.body !== undefined ? shorten(valueText(v.result.body), BODY_WIDTH) : undefined],
      ['status route', v.statusUrl],
    ]),
  );
  const request = Object.entries(v.request);
  if (request.length > 0) {
    lines.push('request (as the status route shows it)');
    lines.push(...fields(request.map(([k, x]) => [k, shorten(valueText(x), BODY_WIDTH)])));
  }
  const checkpoints = Object.entries(v.checkpoints);
  if (checkpoints.length > 0) {
    lines.push('checkpoints');
    lines.push(...fields(checkpoints.map(([k, x]) => [k, shorten(valueText(x), BODY_WIDTH)])));
  }
  if (v.history.length > 0) {
    lines.push('history');
    lines.push(...table(v.history.map((h) => [iso(h.at), age(h.at, now), h.event, h.detail ?? ''])).map((l) => `  ${l}`));
  }
  if (v.revisions && v.revisions.length > 0) {
    lines.push('earlier revisions');
    for (const r of [...v.revisions].reverse()) {
      lines.push(`  revision ${r.revision}: ${r.status} after ${r.attempts} attempt${r.attempts === 1 ? '' : 's'}, ended ${when(r.endedAt, now)}`);
      lines.push(...fields([['sent again because', r.reason], ['its error', r.error ? errorLine(r.error) : undefined]], '    '));
    }
  }
  return lines;
}

/** How long `show --wait` waits for a payment the engine is still working on, and how often it looks. */
export const WAIT_MS = 30_000;
const WAIT_STEP_MS = 200;

/** `paybridge payments show SYSTEM KEY [--wait]`: one payment, readable, without personal data in clear. */
export async function show(run: Run): Promise<number> {
  const [system, key, ...extra] = run.args;
  if (!system || !key || extra.length > 0) throw new UsageError('usage: paybridge payments show SYSTEM KEY [--wait]');
  const c = await run.ctx();
  const found = await findRecord(c.store, system, key);
  const { pk, module } = found;
  let record = found.record;
  if (!record) {
    run.io.err(`no ${system} payment with key "${key}" on ${c.where}`);
    return 1;
  }
  // --wait (issue 15): after a redrive or repost the worker posts within a moment; a script (or a
  // README recipe) shows the outcome rather than "retrying". Bounded: it never waits past WAIT_MS.
  const deadline = run.io.clock() + WAIT_MS;
  const working = (r: PaymentRecord) => r.status === 'retrying' || r.status === 'reconciling';
  while (run.values.wait && working(record) && run.io.clock() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, WAIT_STEP_MS));
    record = (await c.store.get(pk)) ?? record;
  }
  const now = run.io.clock();
  const view = await shownRecord(record, module, now);
  if (run.values.json) run.io.out(JSON.stringify(view, null, 2));
  else for (const line of render(view, now)) run.io.out(line);
  if (run.values.wait && working(record)) {
    run.io.err(`${system} ${key} is still ${record.status} after ${WAIT_MS / 1000} s`);
    return 1;
  }
  return 0;
}
