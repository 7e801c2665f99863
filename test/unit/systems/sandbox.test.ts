import { describe, expect, it } from 'vitest';
import {
  apimRateLimited,
  apimRateLimitHeaders,
  createLimiter,
  LimiterSettingsError,
  limiterSettingsProblem,
  parseLimiterKind,
  parseLimiterRequest,
  retryAfterSeconds,
  SandboxRateLimit,
  seededRandom,
  WindowPeak,
  type LimiterKind,
} from '../../../shared/systems/sandbox.js';

/** A step: a call at `t` and what the limiter must answer: 'ok', or refused with exactly this wait. */
type Step = [t: number, expected: 'ok' | number];

const every = (from: number, step: number, count: number, expected: 'ok' | number = 'ok'): Step[] => Array.from({ length: count }, (_, i) => [from + i * step, expected]);

/** Brute force: the most of `times` inside any window (x - windowMs, x]. */
function bruteMax(times: number[], windowMs = 1000): number {
  return Math.max(0, ...times.map((x) => times.filter((t) => t > x - windowMs && t <= x).length));
}

describe('limiters: each take(now) answers ok or the exact wait', () => {
  it.each<[string, LimiterKind, number, Step[]]>([
    ['rolling R=10: ten calls at 0..900, the 11th at 950 waits 50 ms and is accepted at 1000', 'rolling', 10, [...every(0, 100, 10), [950, 50], [999, 1], [1000, 'ok'], [1001, 99], [1100, 'ok']]],
    ['rolling R=10: a burst of ten at t=0 waits a whole window', 'rolling', 10, [...every(0, 0, 10), [0, 1000], [500, 500], [1000, 'ok']]],
    // If refused calls counted, the calls at 20..999 would keep the window full and 1000 would be refused.
    ['rolling R=2: refused calls do not count', 'rolling', 2, [[0, 'ok'], [10, 'ok'], [20, 980], [500, 500], [999, 1], [1000, 'ok'], [1005, 5], [1010, 'ok'], [1011, 989]]],
    ['rolling R=1: one call per second', 'rolling', 1, [[0, 'ok'], [999, 1], [1000, 'ok'], [1500, 500], [2000, 'ok']]],
    ['fixed R=10: ten late in one window and ten early in the next: 2R within 200 ms', 'fixed', 10, [...every(900, 10, 10), [995, 5], ...every(1000, 10, 10), [1095, 905], [2000, 'ok']]],
    ['fixed R=3: windows are aligned to multiples of 1000, not to the first call', 'fixed', 3, [[1500, 'ok'], [1600, 'ok'], [1700, 'ok'], [1800, 200], [2000, 'ok']]],
    ['bucket R=10: a full bucket forgives a burst, then refills at 10/s', 'bucket', 10, [...every(0, 0, 10), [0, 100], [50, 50], [100, 'ok'], [100, 100], [200, 'ok']]],
    ['bucket R=10: refill stops at capacity R', 'bucket', 10, [[0, 'ok'], ...every(60_000, 0, 10), [60_000, 100]]],
    ['bucket R=0.5: capacity 1, one call every two seconds', 'bucket', 0.5, [[0, 'ok'], [0, 2000], [1000, 1000], [2000, 'ok']]],
  ])('%s', (_name, kind, rate, steps) => {
    const limiter = createLimiter(kind, rate);
    expect(limiter.kind).toBe(kind);
    steps.forEach(([t, expected], i) => {
      const d = limiter.take(t);
      expect({ step: i, t, answer: d.ok ? 'ok' : d.waitMs }).toEqual({ step: i, t, answer: expected });
    });
  });

  it.each<LimiterKind>(['rolling', 'fixed', 'bucket'])('%s: calling again after the stated wait is accepted', (kind) => {
    const limiter = createLimiter(kind, 7);
    const random = seededRandom(7);
    let now = 0;
    let checked = 0;
    for (let i = 0; i < 2_000; i++) {
      now += Math.floor(random() * 40);
      const d = limiter.take(now);
      if (d.ok) continue;
      expect(d.waitMs).toBeGreaterThan(0);
      now += d.waitMs;
      expect(limiter.take(now).ok).toBe(true);
      checked++;
    }
    expect(checked).toBeGreaterThan(100);
  });

  it('rolling: what it accepts never exceeds R in any 1,000 ms window; fixed and bucket do', () => {
    const random = seededRandom(11);
    const arrivals: number[] = [];
    let now = 0;
    for (let i = 0; i < 3_000; i++) arrivals.push((now += Math.floor(random() * 30)));
    const accepted = (kind: LimiterKind) => {
      const limiter = createLimiter(kind, 10);
      return arrivals.filter((t) => limiter.take(t).ok);
    };
    expect(bruteMax(accepted('rolling'))).toBe(10);
    expect(bruteMax(accepted('fixed'))).toBeGreaterThan(10);
    expect(bruteMax(accepted('bucket'))).toBeGreaterThan(10);
  });

  it('remaining counts down to 0 within a window', () => {
    const limiter = createLimiter('rolling', 3);
    expect([0, 1, 2].map((t) => limiter.take(t))).toEqual([
      { ok: true, remaining: 2 },
      { ok: true, remaining: 1 },
      { ok: true, remaining: 0 },
    ]);
  });

  it('a rolling limiter seeded with recent accepted calls counts them', () => {
    const limiter = createLimiter('rolling', 2, 1000, [900, 400]);
    expect(limiter.take(1000)).toEqual({ ok: false, waitMs: 400 });
    expect(limiter.take(1400).ok).toBe(true);
  });
});

describe('limiter settings', () => {
  it.each<[unknown, unknown, RegExp | undefined]>([
    ['rolling', 10, undefined],
    ['fixed', 1, undefined],
    ['bucket', 2.5, undefined],
    ['sliding', 10, /unknown limiter kind "sliding"; known: rolling, fixed, bucket/],
    [undefined, 10, /kind is required/],
    ['rolling', 0, /ratePerSecond must be a positive number, got 0/],
    ['bucket', -1, /positive number/],
    ['rolling', Number.NaN, /positive number/],
    ['rolling', '10', /positive number, got "10"/],
    ['rolling', 2.5, /2\.5 calls per 1000 ms window; the rolling limiter needs a whole number/],
    ['fixed', 0.5, /the fixed limiter needs a whole number of at least 1/],
  ])('kind %j rate %j → %s', (kind, rate, problem) => {
    const found = limiterSettingsProblem(kind, rate);
    if (problem) expect(found).toMatch(problem);
    else expect(found).toBeUndefined();
  });

  it('createLimiter refuses impossible settings with a typed error', () => {
    expect(() => createLimiter('rolling', 0)).toThrow(LimiterSettingsError);
    expect(() => createLimiter('rolling', 0)).toThrow(/positive number/);
  });

  it.each<[string, object]>([
    ['{"kind":"fixed","ratePerSecond":5}', { ok: true, kind: 'fixed', ratePerSecond: 5 }],
    ['{"kind":"bucket"}', { ok: true, kind: 'bucket', ratePerSecond: 10 }],
    ['{"kind":"nope"}', { ok: false, message: expect.stringMatching(/unknown limiter kind "nope"/) }],
    ['{"kind":"rolling","ratePerSecond":0}', { ok: false, message: expect.stringMatching(/positive number/) }],
    ['{"ratePerSecond":5}', { ok: false, message: expect.stringMatching(/kind is required/) }],
    ['[1]', { ok: false, message: expect.stringMatching(/JSON object/) }],
    ['{kind: rolling}', { ok: false, message: expect.stringMatching(/must be JSON/) }],
  ])('POST /__sandbox/limiter %s', (body, expected) => {
    expect(parseLimiterRequest(body, { kind: 'rolling', ratePerSecond: 10, windowMs: 1000 })).toEqual(expected);
  });

  it('SANDBOX_<NAME>_LIMITER: a known kind, nothing, or a refusal naming the variable', () => {
    expect(parseLimiterKind('fixed')).toBe('fixed');
    expect(parseLimiterKind(' bucket ')).toBe('bucket');
    expect(parseLimiterKind(undefined)).toBeUndefined();
    expect(parseLimiterKind('')).toBeUndefined();
    expect(() => parseLimiterKind('sliding', 'SANDBOX_NIF_LIMITER')).toThrow(/SANDBOX_NIF_LIMITER: unknown limiter kind "sliding"/);
  });
});

describe('WindowPeak: the most accepted calls in any rolling 1,000 ms window', () => {
  it.each<[string, number[], number]>([
    ['none', [], 0],
    ['one', [5], 1],
    // Aligned windows would see 3 in [0,1000) and 2 in [1000,2000); the sliding one finds 4 in (599,1599].
    ['not aligned to whole seconds', [0, 600, 999, 1000, 1599], 4],
    ['a call exactly 1000 ms later is in the next window', [0, 1000, 2000], 1],
    ['a burst at one instant', [7, 7, 7, 7], 4],
  ])('%s', (_name, times, expected) => {
    const peak = new WindowPeak();
    for (const t of times) peak.record(t);
    expect(peak.max).toBe(expected);
  });

  it('agrees with brute force on random arrivals', () => {
    const random = seededRandom(3);
    const times: number[] = [];
    let now = 0;
    for (let i = 0; i < 1_500; i++) times.push((now += Math.floor(random() * 120)));
    const peak = new WindowPeak();
    for (const t of times) peak.record(t);
    expect(peak.max).toBe(bruteMax(times));
  });
});

describe('SandboxRateLimit', () => {
  const fakeClock = () => {
    const clock = { now: 0, read: () => clock.now };
    return clock;
  };

  it('reports its settings and the peak of what it let through', () => {
    const clock = fakeClock();
    const gate = new SandboxRateLimit('fixed', 5, clock.read);
    expect(gate.settings).toEqual({ kind: 'fixed', ratePerSecond: 5, windowMs: 1000 });
    clock.now = 950;
    for (let i = 0; i < 6; i++) gate.take();
    clock.now = 1000;
    for (let i = 0; i < 6; i++) gate.take();
    // Five in each fixed window, 50 ms apart: ten accepted within one rolling second.
    expect(gate.maxInAnyWindow).toBe(10);
    gate.resetPeak();
    expect(gate.maxInAnyWindow).toBe(0);
  });

  it('switching to rolling after a burst opens no second burst', () => {
    const clock = fakeClock();
    const gate = new SandboxRateLimit('bucket', 10, clock.read);
    for (let i = 0; i < 10; i++) expect(gate.take().ok).toBe(true);
    clock.now = 100;
    expect(gate.set('rolling')).toEqual({ kind: 'rolling', ratePerSecond: 10, windowMs: 1000 });
    expect(gate.take()).toEqual({ ok: false, waitMs: 900 });
    clock.now = 1000;
    expect(gate.take().ok).toBe(true);
    expect(gate.maxInAnyWindow).toBe(10);
  });

  it('set keeps the rate when none is given, changes it when one is, and refuses a bad one', () => {
    const gate = new SandboxRateLimit('rolling', 4, () => 0);
    expect(gate.set('fixed').ratePerSecond).toBe(4);
    expect(gate.set('rolling', 2)).toEqual({ kind: 'rolling', ratePerSecond: 2, windowMs: 1000 });
    expect(() => gate.set('rolling', 1.5)).toThrow(LimiterSettingsError);
    expect(gate.settings.ratePerSecond).toBe(2);
  });
});

describe('the 429 as APIM sends it', () => {
  it.each([
    [0, 1],
    [50, 1],
    [1000, 1],
    [1001, 2],
    [4_500, 5],
  ])('wait %i ms → Retry-After %i', (waitMs, seconds) => {
    expect(retryAfterSeconds(waitMs)).toBe(seconds);
    expect(apimRateLimited(waitMs)).toEqual({
      headers: { 'retry-after': String(seconds) },
      body: { statusCode: 429, message: `Rate limit is exceeded. Try again in ${seconds} seconds.` },
    });
  });

  it('remaining-calls and total-calls headers, never negative', () => {
    expect(apimRateLimitHeaders(3, 10)).toEqual({ 'ratelimit-remaining': '3', 'ratelimit-limit': '10' });
    expect(apimRateLimitHeaders(-1, 10)['ratelimit-remaining']).toBe('0');
  });
});
