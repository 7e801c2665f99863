import { describe, expect, it } from 'vitest';
import { createMetrics, emfLine } from '../../shared/metrics.js';

describe('CloudWatch embedded metric format', () => {
  it('writes one self-describing JSON line per data point, dimensioned by system', () => {
    expect(JSON.parse(emfLine('cambio', 'posted', 1, 'Count', 1_795_000_000_000))).toEqual({
      _aws: { Timestamp: 1_795_000_000_000, CloudWatchMetrics: [{ Namespace: 'paybridge', Dimensions: [['system'], []], Metrics: [{ Name: 'posted', Unit: 'Count' }] }] },
      system: 'cambio',
      posted: 1,
    });
  });
  it('rounds latencies and ages', () => {
    const lines: string[] = [];
    const m = createMetrics((l) => lines.push(l));
    m.milliseconds('nif', 'post_latency', 12.7);
    m.seconds('brp', 'oldest_overdue_age', 90.2);
    expect(lines.map((l) => JSON.parse(l))).toMatchObject([{ system: 'nif', post_latency: 13 }, { system: 'brp', oldest_overdue_age: 90 }]);
  });
});
