import { recordHeadline, STATUSES, type PaymentRecord, type Status } from '../core/types.js';
import { age, iso, plural, shorten, table } from './format.js';
import { UsageError } from './io.js';
import { decodeListCursor, listPage, type ListQuery } from './listing.js';
import { decodeBrowseCursor, type BrowseFilter } from '../store/browse.js';
import type { CliContext } from './context.js';
import type { Run } from './args.js';
import { scrubberFor } from './personal.js';
import { assertSystem, CLI_SYSTEMS } from './systems.js';

export const DEFAULT_LIMIT = 50;
/** LAST ERROR's width: the table should fit a terminal next to the key. */
const ERROR_WIDTH = 60;

/** `--status held,unknown --status failed` → ['held', 'unknown', 'failed']. */
export function listOption(values: string[] | undefined): string[] {
  return [...new Set((values ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean))];
}

export function parseSince(text: string | undefined, now: number): number | undefined {
  if (!text) return undefined;
  const m = /^(\d+)\s*(m|min|h|d)$/.exec(text.trim());
  if (m) return now - Number(m[1]) * { m: 60_000, min: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'm' | 'min' | 'h' | 'd'];
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new UsageError(`--since must be like 30m, 2h, 1d or a date, not "${text}"`);
  return t;
}

export function parseLimit(text: string | undefined, fallback = DEFAULT_LIMIT): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new UsageError(`--limit must be a whole number from 1 to 1000, not "${text}"`);
  return n;
}

/** The last error as one short line, person identifiers hidden. */
export function lastError(record: PaymentRecord, width = ERROR_WIDTH): string {
  if (!record.error) return '';
  const message = scrubberFor(record).text(record.error.message);
  return shorten(record.error.code ? `${record.error.code}: ${message}` : message, width);
}

/** One row of `--json`: the status route's fields that need no system module, times in ISO. */
export function summary(record: PaymentRecord) {
  const scrub = scrubberFor(record);
  return {
    ...recordHeadline(record),
    ...(record.error ? { error: { ...record.error, message: scrub.text(record.error.message) } } : {}),
  };
}

function describe(query: ListQuery): string {
  const statuses = query.statuses.length === STATUSES.length ? 'all statuses' : query.statuses.join(' or ');
  const systems = query.systems.length === CLI_SYSTEMS.length ? '' : `, ${query.systems.join(' and ')} only`;
  const since = query.since !== undefined ? `, created since ${iso(query.since)}` : '';
  return `${statuses}${systems}${since}`;
}

function describeFilter(f: BrowseFilter): string {
  const parts = [f.statuses && f.statuses.length > 0 && f.statuses.length < STATUSES.length ? f.statuses.join(' or ') : 'all statuses'];
  if (f.systems && f.systems.length > 0 && f.systems.length < CLI_SYSTEMS.length) parts.push(`${f.systems.join(' and ')} only`);
  if (f.caller) parts.push(`caller ${f.caller}`);
  if (f.keyPrefix) parts.push(`keys starting ${f.keyPrefix}`);
  if (f.since !== undefined) parts.push(`created since ${iso(f.since)}`);
  return parts.join(', ');
}

/** The filter of `payments list`'s options, or the one its --cursor carries; a usage error before anything is opened. */
function browseFilter(run: Run): BrowseFilter {
  const { values, now } = run;
  if (values.cursor) {
    if (values.status || values.system || values.since || values.caller || values['key-prefix']) throw new UsageError('--cursor carries the filters of the listing it came from: leave out --status, --system, --since, --caller and --key-prefix');
    try {
      return decodeBrowseCursor(values.cursor).f;
    } catch {
      // An earlier version's cursor: the fallback listing below reads it, or says it is not one.
      return {};
    }
  }
  const statuses = listOption(values.status);
  for (const s of statuses) if (!(STATUSES as readonly string[]).includes(s)) throw new UsageError(`--status must be one or more of ${STATUSES.join(', ')} (comma-separated), not "${s}"`);
  const systems = listOption(values.system);
  for (const s of systems) assertSystem(s);
  const since = parseSince(values.since, now);
  return {
    ...(statuses.length > 0 ? { statuses: statuses as Status[] } : {}),
    ...(systems.length > 0 ? { systems } : {}),
    ...(values.caller ? { caller: values.caller } : {}),
    ...(values['key-prefix'] ? { keyPrefix: values['key-prefix'] } : {}),
    ...(since !== undefined ? { since } : {}),
  };
}

/** The listing through the store's listing index (the console's too). */
async function browseList(run: Run, c: CliContext, limit: number, filter: BrowseFilter): Promise<number> {
  const { values } = run;
  const page = await (c.store.browse as NonNullable<typeof c.store.browse>)({ limit, ...(values.cursor ? { cursor: values.cursor } : { filter }) });
  const records = page.records;
  const heading =
    records.length === 0
      ? `no payments on ${c.where}${page.cursor ? ' in the newest part read' : ''} (${describeFilter(filter)})`
      : `${plural(records.length, 'payment')} on ${c.where}, newest first (${describeFilter(filter)})`;
  return printPage(run, c.where, records, page.cursor, heading);
}

/** `paybridge payments list`: newest first, every status unless --status names some, a page at a time. */
export async function list(run: Run): Promise<number> {
  const { values, now } = run;
  if (run.args.length > 0) throw new UsageError(`payments list takes no SYSTEM or KEY (got "${run.args.join(' ')}"): filter with --system and --status`);
  const limit = parseLimit(values.limit);
  const filter = browseFilter(run);
  const c0 = await run.ctx();
  // The listing index: a page of any filter in at most three DynamoDB requests (issue 22).
  if (c0.store.browse) {
    if (values.cursor) {
      try {
        decodeBrowseCursor(values.cursor);
      } catch {
        throw new UsageError('--cursor is not one this command printed');
      }
    }
    return browseList(run, c0, limit, filter);
  }
  let query: ListQuery;
  if (values.cursor) {
    if (values.status || values.system || values.since) throw new UsageError('--cursor carries the filters of the listing it came from: leave out --status, --system and --since');
    query = decodeListCursor(values.cursor).query;
  } else {
    const statuses = listOption(values.status);
    for (const s of statuses) if (!(STATUSES as readonly string[]).includes(s)) throw new UsageError(`--status must be one or more of ${STATUSES.join(', ')} (comma-separated), not "${s}"`);
    const systems = listOption(values.system);
    for (const s of systems) assertSystem(s);
    const since = parseSince(values.since, now);
    query = {
      statuses: statuses.length > 0 ? (statuses as Status[]) : STATUSES,
      systems: systems.length > 0 ? systems : CLI_SYSTEMS,
      ...(since !== undefined ? { since } : {}),
    };
  }
  const c = c0;
  const page = await listPage(c.store, query, limit, values.cursor);
  // Kontantanalys keeps its scheduled run's summary as a record (`run:latest`): not a payment.
  const records = page.records.filter((r) => !(r.system === 'kontantanalys' && r.key.startsWith('run:')));

  const heading = records.length === 0 ? `no payments on ${c.where} (${describe(query)})` : `${plural(records.length, 'payment')} on ${c.where}, newest first (${describe(query)})`;
  return printPage(run, c.where, records, page.cursor, heading);
}

/** A page of payments as `--json` or as a table under `heading`, and the cursor for the next page. */
function printPage(run: Run, where: string, records: PaymentRecord[], cursor: string | undefined, heading: string): number {
  const { values, io, now } = run;
  if (values.json) {
    io.out(JSON.stringify({ where, payments: records.map(summary), ...(cursor ? { cursor } : {}) }, null, 2));
    return 0;
  }
  io.out(heading);
  if (records.length > 0) {
    const rows = records.map((r) => [r.system, r.key, r.status, String(r.revision ?? 1), String(r.attempts), iso(r.createdAt), age(r.updatedAt, now), lastError(r)]);
    for (const line of table([['SYSTEM', 'KEY', 'STATUS', 'REV', 'ATTEMPTS', 'CREATED', 'UPDATED', 'LAST ERROR'], ...rows])) io.out(line);
  }
  if (cursor) io.out(`more: --cursor ${cursor}`);
  return 0;
}
