import type { Logger, LogFields } from '../log.js';
import type { MetricName, Metrics } from '../metrics.js';

/**
 * What `npm start` prints while it runs, for a person at a terminal (issue 15: a short session printed
 * about 1,700 lines of JSON and CloudWatch EMF documents). One line per request, with what became of
 * the payment; one line per retry attempt; warnings and errors in a line each; the metrics as a summary
 * every minute and at stop. `LOG_FORMAT=json`, or output that is not a terminal, keeps the JSON lines
 * and EMF documents Lambda writes. This is the local stack's only: the Lambda path never loads it.
 */

export type LogFormat = 'human' | 'json';

/** `LOG_FORMAT` (`human` or `json`), else human on a terminal and JSON into a pipe or file. */
export function logFormat(value: string | undefined, isTTY: boolean): LogFormat {
  const v = value?.trim().toLowerCase();
  if (!v) return isTTY ? 'human' : 'json';
  if (v === 'human' || v === 'json') return v;
  throw new Error(`LOG_FORMAT must be human or json, not "${value}"`);
}

const LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
type Level = (typeof LEVELS)[number];

function levelOf(text: string | undefined): Level {
  const t = text?.trim().toLowerCase();
  return (LEVELS as readonly string[]).includes(t ?? '') ? (t as Level) : 'info';
}

/** HH:MM:SS in local time: the terminal's reader thinks in their own clock. */
function clockTime(at: number): string {
  const d = new Date(at);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}

/** A field's value on one line: errors by name and message only (never their data), others as JSON. */
function text(value: unknown): string {
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  if (typeof value === 'string') return value;
  const json = JSON.stringify(value);
  return json === undefined ? String(value) : json;
}

function cut(s: string, max = 200): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

/** What intake and the attempt said about one request before its `request` line closes it. */
interface Pending {
  system?: string;
  ref?: string;
  outcome?: string;
}

/** Keeps the most recent entries only: a line that never comes (a crash) must not grow memory. */
class Recent<V> extends Map<string, V> {
  constructor(private readonly limit: number) {
    super();
  }
  override set(key: string, value: V): this {
    if (!this.has(key) && this.size >= this.limit) {
      const oldest = this.keys().next().value;
      if (oldest !== undefined) this.delete(oldest);
    }
    return super.set(key, value);
  }
}

/** The engine's `attempt` fields as words: the status it left, and how when that is not plain. */
function attemptOutcome(f: LogFields): string {
  const status = String(f.status ?? '?');
  const outcome = String(f.outcome ?? '');
  const http = typeof f.httpStatus === 'number' ? `HTTP ${f.httpStatus}` : '';
  if (outcome === 'posted' && status === 'posted') return http ? `posted (${http})` : 'posted';
  const why = [outcome.replace(/_/g, ' '), http].filter(Boolean).join(', ');
  const said = why ? `${status} (${why})` : status;
  // Held or unknown: the downstream's reason and what to check (shared/core/parked.ts).
  return typeof f.reason === 'string' ? `${said}: ${cut(f.reason, 120)}${typeof f.check === 'string' ? `; check ${f.check}` : ''}` : said;
}

export interface ConsoleOptions {
  write: (line: string) => void;
  level?: string;
  clock?: () => number;
}

export interface LocalConsole {
  log: Logger;
  metrics: Metrics;
  /** The counts since the last summary, as one line (undefined when nothing happened), and starts afresh. */
  summary(label: string): string | undefined;
  /** Every count since the start, as one line. */
  total(label: string): string | undefined;
}

/** Per system: counts (or, for the latency, count, sum and max) of each metric. */
type Tally = Map<string, Map<string, { n: number; sum: number; max: number }>>;

function add(tally: Tally, system: string, name: string, value: number, isCount: boolean): void {
  let bySystem = tally.get(system);
  if (!bySystem) tally.set(system, (bySystem = new Map()));
  const t = bySystem.get(name) ?? { n: 0, sum: 0, max: 0 };
  if (isCount) t.n += value;
  else {
    t.n += 1;
    t.sum += value;
    t.max = Math.max(t.max, value);
  }
  bySystem.set(name, t);
}

function describe(tally: Tally): string | undefined {
  const parts: string[] = [];
  for (const [system, metrics] of [...tally].sort(([a], [b]) => a.localeCompare(b))) {
    const bits: string[] = [];
    for (const [name, t] of metrics) {
      if (name === 'post_latency') bits.push(`sends ${t.n} (avg ${Math.round(t.sum / t.n)} ms, max ${Math.round(t.max)} ms)`);
      else if (name === 'oldest_overdue_age') bits.push(`oldest overdue ${Math.round(t.max)} s`);
      else bits.push(`${name.replace(/_/g, ' ')} ${t.n}`);
    }
    parts.push(`${system}: ${bits.join(', ')}`);
  }
  return parts.length > 0 ? parts.join(' | ') : undefined;
}

/**
 * A Logger and a Metrics sink for the local stack that write for people. Lines of one request (intake's
 * `claimed`, the in-process `attempt`, then the route's `request`) share a requestId and are printed as
 * one line when the request ends; a retry worker's `attempt` is printed at once.
 */
export function humanConsole(opts: ConsoleOptions): LocalConsole {
  const clock = opts.clock ?? Date.now;
  const threshold = LEVELS.indexOf(levelOf(opts.level));
  const pending = new Recent<Pending>(2_000);
  // Worker lines carry the payment's correlationId but not its key hash: intake saw both.
  const refs = new Recent<string>(5_000);
  // The engine counts an attempt's latency just before it logs the attempt, with nothing in between
  // (shared/core/attempt.ts, sendOnce): the latency of a system's last send is that attempt's.
  const lastLatency = new Map<string, number>();
  let interval: Tally = new Map();
  const since: Tally = new Map();

  const line = (parts: (string | undefined)[]) => opts.write(parts.filter((p) => p !== undefined && p !== '').join('  '));
  const route = (r: string) => r.padEnd(36);
  // The system and the key's hash in fixed columns, or nothing at all for a request about no payment.
  const who = (system?: string, ref?: string) => (system || ref ? `${(system ?? '').padEnd(14)} ${ref ? `#${ref.slice(0, 8)}` : '         '}` : undefined);

  const emit = (level: Level, message: string, f: LogFields) => {
    if (LEVELS.indexOf(level) < threshold) return;
    const requestId = typeof f.requestId === 'string' ? f.requestId : undefined;
    const system = typeof f.system === 'string' ? f.system : undefined;
    const ref = typeof f.ref === 'string' ? f.ref : undefined;
    if (ref && typeof f.correlationId === 'string') refs.set(f.correlationId, ref);
    const note = (outcome?: string) => {
      if (!requestId) return false;
      const p = pending.get(requestId) ?? {};
      pending.set(requestId, { ...p, ...(system ? { system } : {}), ...(ref ? { ref } : {}), ...(outcome ? { outcome } : {}) });
      return true;
    };
    switch (message) {
      case 'claimed':
        if (note(f.plan === 'queued' ? 'queued' : f.plan === 'held' ? 'held' : undefined)) return;
        break;
      case 'attempt': {
        const outcome = attemptOutcome(f);
        if (note(outcome)) return;
        const ms = system !== undefined ? lastLatency.get(system) : undefined;
        if (system !== undefined) lastLatency.delete(system);
        const r = ref ?? (typeof f.correlationId === 'string' ? refs.get(f.correlationId) : undefined);
        line([clockTime(clock()), route(`retry ${system ?? ''}`), '   ', who(system, r), outcome, ms !== undefined ? `${Math.round(ms)} ms` : undefined]);
        return;
      }
      case 'duplicate delivery suppressed':
        if (note(`duplicate of a ${String(f.status)} payment: nothing sent`)) return;
        break;
      case 'key reused with another payload: refused':
        if (note('refused: key used for another body')) return;
        break;
      case 'key belongs to another caller: refused':
        if (note("refused: another caller's key")) return;
        break;
      case 'new revision':
        if (note(`revision ${String(f.revision)}`)) return;
        break;
      case 'webhook delivery seen before: its first answer is given again':
        if (note('webhook delivery replayed')) return;
        break;
      case 'request': {
        const p = (requestId && pending.get(requestId)) || {};
        if (requestId) pending.delete(requestId);
        line([clockTime(clock()), route(String(f.route ?? '')), String(f.status ?? ''), who(p.system, p.ref), p.outcome, typeof f.ms === 'number' ? `${f.ms} ms` : undefined]);
        return;
      }
    }
    const { requestId: _r, correlationId: _c, system: _s, ref: _f, ...rest } = f;
    const fields = Object.entries(rest)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${cut(text(v))}`)
      .join(' ');
    line([clockTime(clock()), level === 'info' ? undefined : level.toUpperCase(), system ? `${system}${ref ? ` #${ref.slice(0, 8)}` : ''}:` : undefined, message, fields]);
  };

  const make = (bound: LogFields): Logger => ({
    debug: (m, f) => emit('debug', m, { ...bound, ...f }),
    info: (m, f) => emit('info', m, { ...bound, ...f }),
    warn: (m, f) => emit('warn', m, { ...bound, ...f }),
    error: (m, f) => emit('error', m, { ...bound, ...f }),
    child: (fields) => make({ ...bound, ...fields }),
  });

  const record = (system: string, name: MetricName, value: number, isCount: boolean) => {
    if (name === 'post_latency') lastLatency.set(system, value);
    add(interval, system, name, value, isCount);
    add(since, system, name, value, isCount);
  };

  return {
    log: make({}),
    metrics: {
      count: (system, name, value = 1) => record(system, name, value, true),
      milliseconds: (system, name, value) => record(system, name, value, false),
      seconds: (system, name, value) => record(system, name, value, false),
    },
    summary(label) {
      const said = describe(interval);
      interval = new Map();
      return said === undefined ? undefined : `${clockTime(clock())}  ${label}: ${said}`;
    },
    total(label) {
      const said = describe(since);
      return said === undefined ? undefined : `${clockTime(clock())}  ${label}: ${said}`;
    },
  };
}
