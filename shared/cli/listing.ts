import { deflateRawSync, inflateRawSync } from 'node:zlib';
import type { PaymentRecord, Status } from '../core/types.js';
import type { RecordStore } from '../store/port.js';
import { UsageError } from './io.js';

/**
 * Records of several systems and statuses, newest first, one page at a time. The store lists one
 * (system, status) stream at a time through the sharded status index, newest first, with a cursor;
 * this merges the streams and keeps one store cursor per stream in its own cursor.
 */

export interface ListQuery {
  systems: readonly string[];
  statuses: readonly Status[];
  /** Epoch ms: records created at or after. */
  since?: number;
}

export interface ListResult {
  records: PaymentRecord[];
  /** Pass back (--cursor) for the next page; absent when nothing is left. */
  cursor?: string;
}

/** What a printed cursor holds: the query, so a next page lists the same thing, and each stream's position. */
interface CursorState {
  q: { sy: string[]; st: Status[]; si?: number };
  /** Per stream `<system>/<status>`: the store's cursor after what was shown, or 0 when it is exhausted. Absent: nothing shown yet. */
  p: Record<string, string | 0>;
}

/** Compressed, since one store cursor per stream that has been read from makes a long text. */
function encode(state: CursorState): string {
  return deflateRawSync(Buffer.from(JSON.stringify(state), 'utf8')).toString('base64url');
}

export function decodeListCursor(text: string): { query: ListQuery; state: CursorState } {
  try {
    const state = JSON.parse(inflateRawSync(Buffer.from(text, 'base64url')).toString('utf8')) as CursorState;
    if (state && Array.isArray(state.q?.sy) && Array.isArray(state.q?.st) && typeof state.p === 'object') {
      return { query: { systems: state.q.sy, statuses: state.q.st, ...(state.q.si !== undefined ? { since: state.q.si } : {}) }, state };
    }
  } catch {
    // reported below
  }
  throw new UsageError('--cursor is not one this command printed');
}

/**
 * Streams asked at once. Each list call queries every shard in parallel (8 by default), and the AWS
 * SDK's HTTP pool holds 50 sockets: with all 36 streams at once it queues the rest and prints a
 * warning about it on stderr.
 */
const STREAMS_AT_ONCE = 6;

/** `fn` over `items`, at most `limit` at a time, results in the items' order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

function createdMs(r: PaymentRecord): number {
  return r.createdMs ?? Date.parse(r.createdAt);
}

/**
 * One page of at most `limit` records. Each stream is asked for `limit` records from its position;
 * the newest `limit` of all of them are the page. A stream whose page was only partly shown is asked
 * again for exactly that many, which gives the store's cursor just after them (the store hands out
 * the same order from the same position; a record that moved to another status since can at worst be
 * listed again on the next page, never skipped).
 */
export async function listPage(store: RecordStore, query: ListQuery, limit: number, cursor?: string): Promise<ListResult> {
  const state: CursorState = cursor
    ? decodeListCursor(cursor).state
    : { q: { sy: [...query.systems], st: [...query.statuses], ...(query.since !== undefined ? { si: query.since } : {}) }, p: {} };
  const since = state.q.si;
  const streams = state.q.sy.flatMap((system) => state.q.st.map((status) => ({ system, status, id: `${system}/${status}` }))).filter((s) => state.p[s.id] !== 0);
  const ask = (s: { system: string; status: Status; id: string }, n: number) => {
    const from = state.p[s.id];
    return store.list(s.system, s.status, { limit: n, ...(from ? { cursor: from } : {}), ...(since !== undefined ? { since } : {}) });
  };
  const pages = await mapLimit(streams, STREAMS_AT_ONCE, async (s) => ({ stream: s, page: await ask(s, limit) }));
  const merged = pages
    .flatMap(({ stream, page }) => page.records.map((record) => ({ stream: stream.id, record })))
    .sort((a, b) => createdMs(b.record) - createdMs(a.record) || (a.record.pk < b.record.pk ? 1 : -1));
  const shown = merged.slice(0, limit);
  const next: CursorState = { q: state.q, p: { ...state.p } };
  await mapLimit(pages, STREAMS_AT_ONCE, async ({ stream, page }) => {
    const taken = shown.filter((s) => s.stream === stream.id).length;
    if (taken === page.records.length) next.p[stream.id] = page.cursor ?? 0;
    else if (taken > 0) next.p[stream.id] = (await ask(stream, taken)).cursor ?? 0;
  });
  // DynamoDB hands back a cursor whenever a Query stops at its Limit, even with nothing after it: a
  // listing of exactly `limit` rows said "more" and the next page was empty. One look past each such
  // cursor (a Query of one item) tells.
  await mapLimit(
    streams.filter((s) => next.p[s.id]),
    STREAMS_AT_ONCE,
    async (s) => {
      const probe = await store.list(s.system, s.status, { limit: 1, cursor: next.p[s.id] as string, ...(since !== undefined ? { since } : {}) });
      if (probe.records.length === 0 && !probe.cursor) next.p[s.id] = 0;
    },
  );
  // A stream is over once the store gave no cursor after the last of its records shown.
  const more = streams.some((s) => next.p[s.id] !== 0);
  // A record that changed status while the streams were read can come from two of them: shown once.
  const seen = new Set<string>();
  const records = shown.map((s) => s.record).filter((r) => !seen.has(r.pk) && seen.add(r.pk));
  return { records, ...(more ? { cursor: encode(next) } : {}) };
}
