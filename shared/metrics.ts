import { MetricUnit, Metrics as PowertoolsMetrics } from '@aws-lambda-powertools/metrics';

/**
 * CloudWatch embedded metric format: one JSON line per data point on stdout, which Lambda's log
 * stream turns into metrics without an API call: namespace `paybridge`, per `system` and in total
 * (the alarms in serverless.yml watch the totals).
 */
export const METRIC_NAMES = [
  'posted',
  'duplicate_suppressed',
  'rate_limited',
  'retried',
  'held',
  'unknown',
  'failed',
  'post_latency',
  'overdue_records',
  'oldest_overdue_age',
  'held_over_an_hour',
  /** A system's configuration is invalid: its payments are held (issue 10). */
  'config_error',
  /** A payment's retry budget ran out: held for an operator. */
  'budget_exhausted',
  /** An attempt that did not finish (a dead or timed-out worker), found by the sweep. */
  'stranded',
  /** Waiting payments woken because their system answered again after an outage. */
  'woken',
  /** Two revisions of one payment reached the downstream (a late success of the earlier one): an operator must reverse one. */
  'posted_twice',
] as const;
export type MetricName = (typeof METRIC_NAMES)[number];

export interface Metrics {
  count(system: string, name: MetricName, value?: number): void;
  milliseconds(system: string, name: MetricName, value: number): void;
  seconds(system: string, name: MetricName, value: number): void;
}

type Unit = 'Count' | 'Milliseconds' | 'Seconds';

/**
 * Powertools Metrics writes each data point (the EMF document, its validation and limits,
 * POWERTOOLS_METRICS_DISABLED). One document per data point, flushed at once, as before: the `system`
 * dimension changes from one point to the next (the sweep reports every system), and Powertools keeps
 * one set of dimensions per flush. Each point goes out twice over, per system and as the dimensionless
 * total the alarms in serverless.yml watch.
 */
export function createMetrics(): Metrics {
  const emf = new PowertoolsMetrics({ namespace: 'paybridge' });
  // Powertools puts a `service` dimension in every set; the alarms watch the metrics without one.
  emf.clearDefaultDimensions();
  const put = (system: string, name: MetricName, unit: Unit, value: number) => {
    emf.addDimension('system', system);
    // An empty set: the total.
    emf.addDimensions({});
    emf.addMetric(name, MetricUnit[unit], value);
    emf.publishStoredMetrics();
  };
  return {
    count: (system, name, value = 1) => put(system, name, 'Count', value),
    milliseconds: (system, name, value) => put(system, name, 'Milliseconds', Math.round(value)),
    seconds: (system, name, value) => put(system, name, 'Seconds', Math.round(value)),
  };
}

/** For tests and quiet local runs: keeps the counts in memory. */
export function memoryMetrics(): Metrics & { counts: Record<string, number> } {
  const counts: Record<string, number> = {};
  const add = (system: string, name: MetricName, value = 1) => {
    counts[`${system}.${name}`] = (counts[`${system}.${name}`] ?? 0) + value;
  };
  return { counts, count: add, milliseconds: add, seconds: add };
}
