import type { Run } from './args.js';
import { localFilePath, readLocalFile, type LocalFile } from './context.js';
import { parseLimit, parseSince } from './list.js';
import { UsageError } from './io.js';

/**
 * `paybridge events ...` (issue 21): a caller's events out, through the local stack's own API with the key
 * `npm start` prints (so it sees exactly what that caller sees), and `tail` on npm start's receiver.
 */

function local(run: Run): LocalFile {
  if (run.values.stage) throw new UsageError('events commands work on the local stack; on a stage a caller uses the API (/v1/events, /v1/event-endpoints) with its own key');
  const file = readLocalFile();
  if (!file) throw new Error(`no local stack found (${localFilePath()} is missing): start one with npm start`);
  return file;
}

async function api(file: LocalFile, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${file.apiUrl}${path}`, {
    method,
    headers: { 'x-api-key': file.apiKey, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  const parsed = text ? JSON.parse(text) : undefined;
  if (res.status >= 400) throw new Error(`${method} ${path}: ${res.status} ${parsed?.detail ?? parsed?.title ?? ''}`.trim());
  return { status: res.status, body: parsed };
}

function durationMs(text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const m = /^(\d+)\s*(ms|s|m)?$/.exec(text.trim());
  if (!m) throw new UsageError(`--timeout must be like 30s or 2m, not "${text}"`);
  return Number(m[1]) * ({ ms: 1, s: 1000, m: 60_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm']);
}

const line = (e: { id: string; type: string; timestamp?: string; data?: Record<string, unknown> }) =>
  [e.timestamp ?? '', e.type.padEnd(17), e.data?.system ? `${e.data.system}/${String(e.data.key ?? `externalId ${String(e.data.externalId)}`)}` : '', e.data?.sequence !== undefined ? `seq ${e.data.sequence}` : '', e.data?.status ?? '', e.id].filter(Boolean).join('  ');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function eventsCommand(run: Run): Promise<number> {
  const { values, io } = run;
  const [sub, ...args] = run.args;
  switch (sub) {
    case 'list': {
      const file = local(run);
      const events = (await api(file, 'GET', `/v1/events?limit=${parseLimit(values.limit, 50)}`)).body.events as Parameters<typeof line>[0][];
      if (values.json) io.out(JSON.stringify(events, null, 2));
      else for (const e of events) io.out(line(e));
      if (!values.json && events.length === 0) io.out('no events yet');
      return 0;
    }
    case 'show': {
      if (!args[0]) throw new UsageError('usage: paybridge events show EVENT_ID');
      const shown = (await api(local(run), 'GET', `/v1/events/${encodeURIComponent(args[0])}`)).body;
      if (values.json) io.out(JSON.stringify(shown, null, 2));
      else {
        io.out(line(shown));
        for (const d of shown.deliveries ?? []) {
          io.out(`  to ${d.endpointId}: ${d.status}, ${d.tries} tries${d.nextAttemptAt ? `, next ${d.nextAttemptAt}` : ''}`);
          for (const a of d.attempts ?? []) io.out(`    ${a.at}  ${a.status || '---'}  ${a.ms} ms  ${String(a.answer).slice(0, 60)}`);
        }
      }
      return 0;
    }
    case 'resend': {
      if (!args[0]) throw new UsageError('usage: paybridge events resend EVENT_ID');
      const done = (await api(local(run), 'POST', `/v1/events/${encodeURIComponent(args[0])}/resend`)).body;
      io.out(values.json ? JSON.stringify(done) : `resent ${done.eventId} to ${done.queued} endpoint(s)`);
      return 0;
    }
    case 'recover': {
      if (!values.endpoint || !values.since) throw new UsageError('usage: paybridge events recover --endpoint ENDPOINT_ID --since 2h|2026-11-22T10:00Z');
      const file = local(run);
      const since = new Date(parseSince(values.since, run.now) as number).toISOString();
      const path = `/v1/event-endpoints/${encodeURIComponent(values.endpoint)}`;
      const started = (await api(file, 'POST', `${path}/recover`, { since })).body;
      io.out(`${started.queued} of ${started.events} events since ${since} queued again for ${values.endpoint}; the endpoint gets them one at a time`);
      // Progress until they are delivered (or the timeout): the deliveries route shows where each one is.
      const until = Date.now() + durationMs(values.timeout, 60_000);
      let last = -1;
      while (Date.now() < until && started.queued > 0) {
        const deliveries = (await api(file, 'GET', `${path}/deliveries`)).body.deliveries as { status: string }[];
        const pending = deliveries.filter((d) => d.status === 'pending').length;
        if (pending !== last) io.out(`  ${pending} still pending`);
        last = pending;
        if (pending === 0) break;
        await sleep(500);
      }
      return 0;
    }
    case 'tail': {
      const file = local(run);
      if (!file.eventReceiver) throw new Error('this local stack runs no event receiver (started before events out?): restart npm start');
      const base = file.eventReceiver.replace(/\/events$/, '');
      const count = values.count === undefined ? Infinity : parseLimit(values.count, 1);
      const until = values.timeout === undefined ? Infinity : Date.now() + durationMs(values.timeout, 0);
      let after = Number.POSITIVE_INFINITY;
      let seen = 0;
      if (!values.json) io.out(`events arriving at ${file.eventReceiver} (Ctrl-C stops):`);
      // From now on unless --count asks for some: what arrived before the tail started is shown too then.
      const first = (await (await fetch(`${base}/received?after=0`, { signal: AbortSignal.timeout(10_000) })).json()) as { events: { n: number }[] };
      after = values.count === undefined ? (first.events.at(-1)?.n ?? 0) : 0;
      while (seen < count && Date.now() < until) {
        const got = (await (await fetch(`${base}/received?after=${after}`, { signal: AbortSignal.timeout(10_000) })).json()) as { events: { n: number; verified: boolean; event: any }[] };
        for (const r of got.events) {
          after = r.n;
          seen++;
          io.out(values.json ? JSON.stringify(r) : `${r.verified ? 'signature ok ' : 'BAD SIGNATURE'}  ${line(r.event)}`);
          if (seen >= count) break;
        }
        if (seen < count) await sleep(300);
      }
      return seen >= count || count === Infinity ? 0 : 1;
    }
    default:
      throw new UsageError('usage: paybridge events list|show|resend|recover|tail (paybridge --help)');
  }
}
