import { afterEach, describe, expect, it, vi } from 'vitest';
import { createMetrics, memoryMetrics } from '../../shared/metrics.js';

/** The EMF documents written while `act` runs (Powertools writes them through a Console on stdout). */
function emitted(act: () => void): Record<string, any>[] {
  const lines: string[] = [];
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(((chunk: string | Uint8Array) => {
    lines.push(...String(chunk).split('\n').filter(Boolean));
    return true;
  }) as never);
  try {
    act();
  } finally {
    out.mockRestore();
  }
  return lines.map((l) => JSON.parse(l) as Record<string, any>);
}

describe('CloudWatch embedded metric format, through Powertools Metrics', () => {
  afterEach(() => vi.unstubAllEnvs());

  it('writes one self-describing document per data point: namespace paybridge, per system and as the dimensionless total the alarms watch', () => {
    const [doc] = emitted(() => createMetrics().count('cambio', 'unknown'));
    expect(doc?._aws.CloudWatchMetrics).toEqual([{ Namespace: 'paybridge', Dimensions: [['system'], []], Metrics: [{ Name: 'unknown', Unit: 'Count' }] }]);
    expect(doc).toMatchObject({ system: 'cambio', unknown: 1 });
    // No `service` dimension (Powertools' default): the alarms' metrics have no dimensions at all.
    expect(doc).not.toHaveProperty('service');
    expect(typeof doc?._aws.Timestamp).toBe('number');
  });

  it('keeps each system in its own document, rounding latencies and ages', () => {
    const m = createMetrics();
    const docs = emitted(() => {
      m.milliseconds('nif', 'post_latency', 12.7);
      m.seconds('brp', 'oldest_overdue_age', 90.2);
      m.count('nif', 'held_over_an_hour', 3);
    });
    expect(docs).toMatchObject([
      { system: 'nif', post_latency: 13, _aws: { CloudWatchMetrics: [{ Metrics: [{ Name: 'post_latency', Unit: 'Milliseconds' }] }] } },
      { system: 'brp', oldest_overdue_age: 90, _aws: { CloudWatchMetrics: [{ Metrics: [{ Name: 'oldest_overdue_age', Unit: 'Seconds' }] }] } },
      { system: 'nif', held_over_an_hour: 3 },
    ]);
    expect(docs[1]).not.toHaveProperty('post_latency');
  });

  it('counts in memory for tests and quiet local runs', () => {
    const m = memoryMetrics();
    m.count('cambio', 'posted');
    m.count('cambio', 'posted', 2);
    m.milliseconds('cambio', 'post_latency', 40);
    expect(m.counts).toEqual({ 'cambio.posted': 3, 'cambio.post_latency': 40 });
  });
});
