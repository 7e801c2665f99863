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
] as const;
export type MetricName = (typeof METRIC_NAMES)[number];

export interface Metrics {
  count(system: string, name: MetricName, value?: number): void;
  milliseconds(system: string, name: MetricName, value: number): void;
  seconds(system: string, name: MetricName, value: number): void;
}

export function emfLine(system: string, name: MetricName, value: number, unit: 'Count' | 'Milliseconds' | 'Seconds', at = Date.now()): string {
  return JSON.stringify({
    _aws: { Timestamp: at, CloudWatchMetrics: [{ Namespace: 'paybridge', Dimensions: [['system'], []], Metrics: [{ Name: name, Unit: unit }] }] },
    system,
    [name]: value,
  });
}

export function createMetrics(write: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Metrics {
  return {
    count: (system, name, value = 1) => write(emfLine(system, name, value, 'Count')),
    milliseconds: (system, name, value) => write(emfLine(system, name, Math.round(value), 'Milliseconds')),
    seconds: (system, name, value) => write(emfLine(system, name, Math.round(value), 'Seconds')),
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
