import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { currentRate, DEFAULT_PACING, EMPTY_LIMITER, on429, pacedRate, reserveSlots, slotUsable, type LimiterState } from '../../../shared/core/pacing.js';
import { retryAfterSeconds, SandboxRateLimit, seededRandom } from '../../../shared/systems/sandbox.js';

/**
 * Issue 23 item 1: the shared schedule against a strict rolling window (Azure API Management's `rate-limit`)
 * whose limit nobody told it. A discrete-event model of one worker: it reserves its batch's slots in one go
 * (`reserveSlots`), sends each on its slot (up to `lateMs` late; a slot a 429 has since paused, or handed out
 * before the rate was lowered, is taken again, the old one given up, as `Pacer.pausedAt` and the worker do), each call reaching the gateway half a round trip later, and
 * every 429 fed back with the time its send left (`on429`), as `sendOnce` does.
 */
const S = DEFAULT_PACING;
const T0 = 1_000_000;

interface Run {
  accepted: number[];
  refused: number;
  refusedAt: number[];
  rateAt: (t: number) => number;
}

function drive(opts: { real: (t: number) => number; configured: number; seconds: number; batch: number; seed: number; rttMs: [number, number]; seesAccepted?: boolean }): Run {
  const random = seededRandom(opts.seed);
  const between = ([lo, hi]: [number, number]) => lo + random() * (hi - lo);
  let now = T0;
  let state: LimiterState = { ...EMPTY_LIMITER, lanes: {} };
  let limitNow = opts.real(T0);
  const gateway = new SandboxRateLimit('rolling', limitNow, () => now);
  const accepted: number[] = [];
  // When the sends that were accepted left: what `Pacer.feedback` hands `on429` (this container's).
  const acceptedSent: number[] = [];
  let refused = 0;
  const refusedAt: number[] = [];
  const rates: [number, number][] = [];
  type Event = { at: number; kind: 'send'; slot: number; tries: number } | { at: number; kind: 'arrive'; sentAt: number; rtt: number } | { at: number; kind: 'answer'; sentAt: number; waitMs?: number } | { at: number; kind: 'batch' };
  const events: Event[] = [{ at: T0, kind: 'batch' }];
  let inFlight = 0;
  const end = T0 + opts.seconds * 1_000;
  const push = (e: Event) => {
    let i = events.length;
    while (i > 0 && (events[i - 1] as Event).at > e.at) i--;
    events.splice(i, 0, e);
  };
  const bookedAt = new Map<number, number>();
  const reserve = (k: number, unused: number[] = []) => {
    const r = reserveSlots(state, opts.configured, now, k, now + 60_000, S, unused);
    state = r.state;
    rates.push([now, currentRate(state, opts.configured)]);
    for (const slot of r.slots) bookedAt.set(slot, now);
    return r.slots;
  };
  // As `Pacer.pausedAt`: in a pause, or handed out before the rate was lowered.
  const stale = (slot: number) => slot < state.pausedUntil || (state.lastDecreaseAt !== undefined && (bookedAt.get(slot) ?? Infinity) <= state.lastDecreaseAt);
  for (let steps = 0; events.length > 0 && steps < 200_000; steps++) {
    const e = events.shift() as Event;
    now = e.at;
    if (now >= end) break;
    const limit = opts.real(now);
    if (limit !== limitNow) {
      gateway.set('rolling', limit);
      limitNow = limit;
    }
    if (e.kind === 'batch') {
      const slots = reserve(opts.batch);
      inFlight = slots.length;
      for (const slot of slots) push({ at: slot + random() * S.lateMs, kind: 'send', slot, tries: 0 });
      if (slots.length === 0) push({ at: now + 50, kind: 'batch' });
    } else if (e.kind === 'send') {
      if (stale(e.slot) || !slotUsable(e.slot, now, S)) {
        const again = e.tries < 3 ? reserve(1, [e.slot])[0] : undefined;
        if (again !== undefined) push({ at: again + random() * S.lateMs, kind: 'send', slot: again, tries: e.tries + 1 });
        else if (--inFlight === 0) push({ at: now, kind: 'batch' });
        continue;
      }
      const rtt = between(opts.rttMs);
      push({ at: now + rtt / 2, kind: 'arrive', sentAt: now, rtt });
    } else if (e.kind === 'arrive') {
      const d = gateway.take();
      if (d.ok) accepted.push(now);
      else {
        refused++;
        refusedAt.push(now);
      }
      push({ at: now + e.rtt / 2, kind: 'answer', sentAt: e.sentAt, ...(d.ok ? {} : { waitMs: retryAfterSeconds(d.waitMs) * 1_000 }) });
    } else {
      if (e.waitMs === undefined) acceptedSent.push(e.sentAt);
      else state = on429(state, opts.configured, now, e.waitMs, S, e.sentAt, undefined, opts.seesAccepted ? acceptedSent : []);
      if (--inFlight === 0) push({ at: now, kind: 'batch' });
    }
  }
  return {
    accepted,
    refused,
    refusedAt,
    rateAt: (t) => [...rates].reverse().find(([at]) => at <= t)?.[1] ?? opts.configured,
  };
}

const acceptedBetween = (run: Run, from: number, to: number) => run.accepted.filter((t) => t >= T0 + from && t < T0 + to).length;

describe('learning a limit nobody told us (issue 23 item 1)', () => {
  it('a configured rate above the real limit converges to it within a few seconds; 429s stay under 3 % of calls (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 3, max: 30 }),
        fc.double({ min: 1.2, max: 3, noNaN: true }),
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        fc.boolean(),
        (real, over, batch, seed, seesAccepted) => {
          const configured = Math.ceil(real * over);
          // seesAccepted: one container makes every send and measures what was accepted (the local stack);
          // otherwise only the shared schedule's count is at hand (another container's sends).
          const run = drive({ real: () => real, configured, seconds: 40, batch, seed, rttMs: [4, 24], seesAccepted });
          const calls = run.accepted.length + run.refused;
          // Converged: from 4 s on, at least 90 % of what the real limit allows went through, less one more
          // stated wait (a failed probe's).
          expect(acceptedBetween(run, 4_000, 40_000)).toBeGreaterThanOrEqual(0.9 * real * 36 - real);
          // And kept off it: a few 429s to learn and to probe, not a share of the traffic.
          expect(run.refused).toBeLessThanOrEqual(Math.max(3, 0.03 * calls));
        },
      ),
      { numRuns: 60, seed: 23 },
    );
  });

  it('configured 25/s against a real 10/s: the rate is 10 within 2 s, and the gateway never sees more than 10 in a second after that', () => {
    const run = drive({ real: () => 10, configured: 25, seconds: 30, batch: 10, seed: 1, rttMs: [4, 24], seesAccepted: true });
    expect(run.rateAt(T0 + 2_000)).toBeLessThanOrEqual(10);
    expect(acceptedBetween(run, 2_000, 30_000)).toBeGreaterThanOrEqual(0.9 * 10 * 28);
    expect(run.refused).toBeLessThanOrEqual(6);
  });

  it('the configured rate is a ceiling: at a known limit, no 429 at all', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 30 }), fc.integer({ min: 1, max: 10 }), fc.integer({ min: 0, max: 2 ** 31 - 1 }), (real, batch, seed) => {
        const run = drive({ real: () => real, configured: real, seconds: 20, batch, seed, rttMs: [4, 24] });
        expect(run.refused).toBe(0);
        expect(Math.max(...[T0, ...run.accepted].map((t) => run.accepted.filter((x) => x > t - 1_000 && x <= t).length))).toBeLessThanOrEqual(real);
      }),
      { numRuns: 20, seed: 23 },
    );
  });

  it('probes upward slowly and safely: a limit that rose from 5 to 10 is found within two minutes, with few 429s', () => {
    const run = drive({ real: (t) => (t < T0 + 20_000 ? 5 : 10), configured: 20, seconds: 160, batch: 10, seed: 3, rttMs: [4, 24] });
    expect(run.rateAt(T0 + 19_000)).toBeLessThanOrEqual(5);
    expect(run.rateAt(T0 + 140_000)).toBeGreaterThanOrEqual(9);
    expect(run.refused).toBeLessThanOrEqual(0.03 * (run.accepted.length + run.refused));
  });

  it('the rate shown beside the configured one is the one paced to: the lowest of ceiling, measured rate and stated limit, with a due probe', () => {
    const base = { ...EMPTY_LIMITER, lanes: {} };
    // Stated by headers 20/s, measured from 429s 5/s: paced at 5 (the console showed 20, the stated one, before).
    expect(pacedRate({ ...base, learnedRate: 20, rate: 5, lastDecreaseAt: T0, probeEveryMs: 20_000 }, 25, T0 + 1_000)).toBe(5);
    expect(pacedRate({ ...base, learnedRate: 4, rate: 5, lastDecreaseAt: T0, probeEveryMs: 20_000 }, 25, T0 + 1_000)).toBe(4);
    // A probe that is due counts: the next reservation paces one higher.
    expect(pacedRate({ ...base, rate: 5, lastDecreaseAt: T0, probeEveryMs: 20_000 }, 25, T0 + 20_000)).toBe(6);
    expect(pacedRate(base, 25, T0)).toBe(25);
  });

  it.each<[string, number[], number | undefined, Partial<LimiterState>, number | undefined]>([
    ['ten accepted in the second before a 429 (wait 1 s): paced at 10', [100, 200, 300, 400, 500, 600, 700, 800, 900, 950], 1_000, {}, 10],
    ['one accepted before a lone 429: a blip, not a limit of one (pause only)', [500], 1_000, {}, undefined],
    ['one accepted before a second 429 within 10 s: measured', [500], 1_000, { lastLimitedAt: T0 - 2_000 }, 1],
    ['a wait stated longer than the window (a quota, a fault): nothing measured', [100, 200, 300, 400, 500, 600], 5_000, {}, undefined],
  ])('%s', (_name, acceptedOffsets, waitMs, over, rate) => {
    const sentAt = T0 + 1_000;
    const next = on429({ ...EMPTY_LIMITER, lanes: {}, ...over }, 25, sentAt + 20, waitMs, S, sentAt, undefined, acceptedOffsets.map((x) => T0 + x));
    expect(next.rate).toBe(rate);
    expect(next.pausedUntil).toBe(sentAt + 20 + (waitMs ?? 1_000));
  });
});
