import type { Logger, LogFields } from '../log.js';
import type { MetricName, Metrics } from '../metrics.js';

/**
 * What the console's overview charts, for the local stack: per system and minute, the payments posted,
 * the 429s and ambiguous answers, the send latencies, and samples of the queue depth and the learnt rate
 * against the configured one. It listens to the metrics and log lines the engine writes anyway (a
 * wrapper around each), and keeps one day in memory. In AWS the same figures are CloudWatch metrics.
 */

interface Minute {
  posted: number;
  limited: number;
  ambiguous: number;
  latencies: number[];
  depth?: number;
  learnt?: number;
  configured?: number;
}

const DAY_MINUTES = 24 * 60;
/** Latencies kept per system and minute: enough for a p99 at the paced rates. */
const LATENCIES_PER_MINUTE = 2_000;

export interface Series {
  /** Epoch seconds of each point. */
  t: number[];
  posted: number[];
  limited: number[];
  ambiguous: number[];
  p50: (number | null)[];
  p99: (number | null)[];
  depth: (number | null)[];
  learnt: (number | null)[];
  configured: (number | null)[];
}

function quantile(sorted: number[], q: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

export class OverviewRecorder {
  private readonly minutes = new Map<string, Map<number, Minute>>();

  constructor(private readonly clock: () => number = Date.now) {}

  private bucket(system: string, at = this.clock()): Minute {
    const minute = Math.floor(at / 60_000);
    let bySystem = this.minutes.get(system);
    if (!bySystem) this.minutes.set(system, (bySystem = new Map()));
    let m = bySystem.get(minute);
    if (!m) {
      bySystem.set(minute, (m = { posted: 0, limited: 0, ambiguous: 0, latencies: [] }));
      for (const k of bySystem.keys()) if (k <= minute - DAY_MINUTES) bySystem.delete(k);
    }
    return m;
  }

  metrics(inner: Metrics): Metrics {
    // Built on the inner sink, so whatever else it offers (a memory sink's counts, read by tests) stays reachable.
    return Object.assign(Object.create(inner) as Metrics, {
      count: (system: string, name: MetricName, value = 1) => {
        if (name === 'posted') this.bucket(system).posted += value;
        inner.count(system, name, value);
      },
      milliseconds: (system: string, name: MetricName, value: number) => {
        if (name === 'post_latency') {
          const b = this.bucket(system);
          if (b.latencies.length < LATENCIES_PER_MINUTE) b.latencies.push(value);
        }
        inner.milliseconds(system, name, value);
      },
      seconds: (system: string, name: MetricName, value: number) => inner.seconds(system, name, value),
    });
  }

  /** Counts the engine's `attempt` lines by outcome (429s, ambiguous answers). */
  log(inner: Logger, bound: LogFields = {}): Logger {
    const see = (message: string, f: LogFields | undefined) => {
      if (message !== 'attempt') return;
      const fields = { ...bound, ...f };
      const system = typeof fields.system === 'string' ? fields.system : undefined;
      if (!system) return;
      if (fields.outcome === 'rate_limited') this.bucket(system).limited++;
      if (fields.outcome === 'ambiguous') this.bucket(system).ambiguous++;
    };
    return {
      debug: (m, f) => inner.debug(m, f),
      info: (m, f) => (see(m, f), inner.info(m, f)),
      warn: (m, f) => (see(m, f), inner.warn(m, f)),
      error: (m, f) => inner.error(m, f),
      child: (fields) => this.log(inner.child(fields), { ...bound, ...fields }),
    };
  }

  sample(system: string, s: { depth?: number; learnt?: number; configured?: number }): void {
    const b = this.bucket(system);
    if (s.depth !== undefined) b.depth = s.depth;
    if (s.learnt !== undefined) b.learnt = s.learnt;
    if (s.configured !== undefined) b.configured = s.configured;
  }

  /** One system's series: per minute over the last hour, per ten minutes over the last day. */
  series(system: string, span: 'hour' | 'day', now = this.clock()): Series {
    const step = span === 'hour' ? 1 : 10;
    const points = span === 'hour' ? 60 : 144;
    const last = Math.floor(now / 60_000);
    const first = last - step * points + 1;
    const out: Series = { t: [], posted: [], limited: [], ambiguous: [], p50: [], p99: [], depth: [], learnt: [], configured: [] };
    const bySystem = this.minutes.get(system) ?? new Map<number, Minute>();
    for (let p = 0; p < points; p++) {
      const from = first + p * step;
      let posted = 0;
      let limited = 0;
      let ambiguous = 0;
      const lat: number[] = [];
      let depth: number | null = null;
      let learnt: number | null = null;
      let configured: number | null = null;
      for (let m = from; m < from + step; m++) {
        const b = bySystem.get(m);
        if (!b) continue;
        posted += b.posted;
        limited += b.limited;
        ambiguous += b.ambiguous;
        lat.push(...b.latencies);
        if (b.depth !== undefined) depth = Math.max(depth ?? 0, b.depth);
        if (b.learnt !== undefined) learnt = b.learnt;
        if (b.configured !== undefined) configured = b.configured;
      }
      lat.sort((a, b) => a - b);
      out.t.push(from * 60);
      // Per minute in both spans, so the two charts read alike.
      out.posted.push(posted / step);
      out.limited.push(limited / step);
      out.ambiguous.push(ambiguous / step);
      out.p50.push(quantile(lat, 0.5));
      out.p99.push(quantile(lat, 0.99));
      out.depth.push(depth);
      out.learnt.push(learnt);
      out.configured.push(configured);
    }
    return out;
  }
}
