import { describe, expect, it } from 'vitest';
import { backoffMs, retryDelayMs, sqsDelaySeconds, sqsSlotDelaySeconds, statedWaitMs } from '../../../shared/core/retry-policy.js';

const NOW = Date.parse('2026-11-22T12:00:00Z');

describe('statedWaitMs', () => {
  it.each([
    [{ 'retry-after': '7' }, '', 7_000],
    [{ 'Retry-After': '0' }, '', 0],
    [{ 'retry-after': 'Sun, 22 Nov 2026 12:00:30 GMT' }, '', 30_000],
    [{ 'retry-after': 'Sun, 22 Nov 2026 11:00:00 GMT' }, '', 0],
    [{}, 'Rate limit is exceeded. Try again in 5 seconds.', 5_000],
    [{}, '{"message":"Try again in 1 second"}', 1_000],
    [{}, 'try again in 2 minutes', 120_000],
    [{}, 'Try again in 250 ms', 250],
    [{}, 'Try again later', undefined],
    [{}, '', undefined],
  ])('%j %j → %j', (headers, text, expected) => {
    expect(statedWaitMs(headers, text, NOW)).toBe(expected);
  });
});

describe('backoffMs: full jitter, capped', () => {
  it.each([
    [0, 0.999, 999],
    [1, 0.999, 1_998],
    [3, 0.5, 4_000],
    [20, 0.999, 899_100],
    [1000, 1 - 1e-9, 899_999],
  ])('failures %i, random %f → %i', (failures, r, expected) => {
    expect(backoffMs(failures, () => r)).toBe(expected);
  });
  it('is never negative and never above the cap', () => {
    for (let f = 0; f < 40; f++) for (const r of [0, 0.3, 0.9999]) expect(backoffMs(f, () => r)).toBeLessThanOrEqual(900_000);
  });
});

describe('retryDelayMs', () => {
  it('honours a stated wait, never shortening it, with at most a second of jitter', () => {
    expect(retryDelayMs({ failures: 0, statedWaitMs: 5_000 }, () => 0)).toBe(5_000);
    expect(retryDelayMs({ failures: 0, statedWaitMs: 5_000 }, () => 0.999)).toBe(5_499);
    expect(retryDelayMs({ failures: 0, statedWaitMs: 60_000 }, () => 0.999)).toBe(60_999);
  });
  it('caps a stated wait at the backoff cap', () => {
    expect(retryDelayMs({ failures: 0, statedWaitMs: 3_600_000 }, () => 0)).toBe(900_000);
  });
  it('falls back to backoff with a floor', () => {
    expect(retryDelayMs({ failures: 0 }, () => 0)).toBe(250);
    expect(retryDelayMs({ failures: 2 }, () => 0.5)).toBe(2_000);
  });
});

describe('sqsDelaySeconds: rounded up, 0..900', () => {
  it.each([
    [NOW - 5_000, 0],
    [NOW, 0],
    [NOW + 1, 1],
    [NOW + 1_000, 1],
    [NOW + 1_001, 2],
    [NOW + 900_000, 900],
    [NOW + 3_600_000, 900],
  ])('due %i → %i s', (due, expected) => {
    expect(sqsDelaySeconds(due, NOW)).toBe(expected);
  });
});

describe('sqsSlotDelaySeconds: rounded down, so the worker arrives < 1 s early and waits in-process', () => {
  it.each([
    [NOW - 5_000, 0],
    [NOW + 999, 0],
    [NOW + 1_000, 1],
    [NOW + 1_999, 1],
    [NOW + 2_000_000, 900],
  ])('slot %i → %i s', (slot, expected) => {
    expect(sqsSlotDelaySeconds(slot, NOW)).toBe(expected);
  });
});
