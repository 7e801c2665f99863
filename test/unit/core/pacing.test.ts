import { describe, expect, it } from 'vitest';
import {
  currentRate,
  DEFAULT_PACING,
  EMPTY_LIMITER,
  endPreviousRun,
  givenBack,
  grantLane,
  learn,
  nextLaneSend,
  on429,
  raiseRate,
  rateInfoFrom,
  releaseLane,
  REPEATED_429_MS,
  reserveSlots,
  slotInterval,
  slotUsable,
  type LimiterState,
} from '../../../shared/core/pacing.js';
import { marshall } from '@aws-sdk/util-dynamodb';
import { seededRandom } from '../../../shared/systems/sandbox.js';
import { maxInWindow } from '../../helpers/windows.js';

const S = DEFAULT_PACING; // window 1000 ms, margin 30 ms, late 20 ms
const T = 1_000_000;
const EPOCH = Date.parse('2026-11-22T12:00:00Z');
const state = (over: Partial<LimiterState> = {}): LimiterState => ({ ...EMPTY_LIMITER, lanes: {}, ...over });

const pacedWindowOf = () => S.windowMs + S.marginMs;


describe('reserveSlots: the shared schedule', () => {
  it.each<[string, Partial<LimiterState>, number, number, number[]]>([
    ['idle: starts now, spaced (1000 + 30) / R', {}, 3, Infinity, [T, T + 103, T + 206]],
    ['busy: continues where the last reservation ended', { next: T + 500, lastSlot: T + 397 }, 2, Infinity, [T + 500, T + 603]],
    ['paused after a 429: starts when the pause ends', { pausedUntil: T + 5_000 }, 1, Infinity, [T + 5_000]],
    ['bounded: none after `latest`', { next: T + 900 }, 5, T + 1_000, [T + 900]],
    ['booked beyond `latest`: none', { next: T + 2_000 }, 5, T + 1_000, []],
  ])('%s', (_name, over, k, latest, expected) => {
    const r = reserveSlots(state(over), 10, T, k, latest, S);
    expect(r.slots).toEqual(expected);
    if (expected.length > 0) expect(r.state.lastSlot).toBe(expected.at(-1));
    else expect(r.state.next).toBe(over.next ?? 0);
  });

  it('never lets a rolling second hold more than R, however each send is late within lateMs and jittered (randomised, seeded)', () => {
    const random = seededRandom(7);
    for (const rate of [2, 5, 10, 37]) {
      let s = state();
      const arrivals: number[] = [];
      let now = T;
      // Several workers reserving blocks of various sizes, back to back, for 20 s of sends.
      for (let i = 0; i < 200 && now < T + 20_000; i++) {
        const r = reserveSlots(s, rate, now, 1 + Math.floor(random() * 25), Infinity, S);
        s = r.state;
        // Each send leaves up to lateMs after its slot and arrives with up to 10 ms of jitter.
        for (const slot of r.slots) arrivals.push(slot + random() * S.lateMs + random() * (S.marginMs - S.lateMs));
        now += Math.floor(random() * 1_500);
      }
      expect(maxInWindow(arrivals)).toBeLessThanOrEqual(rate);
    }
  });

  it("slots given back after a 429 leave no gap: the schedule goes on from the last slot still booked, or the pause's end", () => {
    // Fifty slots at a configured 25/s, ten sent; the eleventh met the real limit of 10 (pause 1 s, rate 10).
    const booked = reserveSlots(state(), 25, T, 50, Infinity, S);
    const sent = booked.slots.slice(0, 10);
    const heardAt = (booked.slots[10] as number) + 5;
    const limited = on429(booked.state, 25, heardAt, 1_000, S, booked.slots[10], undefined, sent);
    expect(currentRate(limited, 25)).toBe(10);
    // Every slot from the eleventh on is given back (paused or placed at the old pace) and taken again.
    const stale = booked.slots.slice(10);
    const again = reserveSlots(limited, 25, heardAt + 1, stale.length, Infinity, S, stale);
    // On main: the first new slot came after all fifty old ones (T + 2,060), 0.6 s after the pause ended.
    expect(again.slots[0]).toBe(heardAt + 1_000);
    // Still never more than the learnt 10 in any rolling second with the ten already sent.
    expect(maxInWindow([...sent, ...again.slots.map((x) => x + S.lateMs)])).toBeLessThanOrEqual(10);
    // Slots another worker holds beyond the pause are still counted: the schedule goes on after them.
    const kept = stale.slice(-3);
    const partly = reserveSlots(limited, 25, heardAt + 1, 5, Infinity, S, stale.slice(0, -3));
    expect(partly.slots[0]).toBeGreaterThan(kept.at(-1) as number);
  });

  it('giving back the only send the schedule knows of leaves it a time DynamoDB can store, and the next slot free at once', () => {
    // NIF at 1/s (no lane below 2/s): one payment's slot, stopped on its socket 40 ms late and given back.
    const booked = reserveSlots(state(), 1, T, 1, Infinity, S);
    const back = givenBack(booked.state, 1, booked.slots, S);
    // On main the schedule went on "from the last slot still booked", of which there was none: next = -Infinity,
    // which the document client refuses to write (the give-back lost, the slot kept counted for a window).
    expect(Number.isFinite(back.next)).toBe(true);
    expect(() => marshall(back, { removeUndefinedValues: true })).not.toThrow();
    expect(reserveSlots(back, 1, T + 40, 1, Infinity, S).slots).toEqual([T + 40]);
  });

  it('slots exactly 1/R apart would not: the margin is what keeps the window', () => {
    // One send 15 ms late at the start of a second, the next ten on time: eleven land in one rolling second.
    const naive = Array.from({ length: 40 }, (_, i) => T + i * 100 + (i === 0 ? 15 : 0));
    expect(maxInWindow(naive)).toBe(11);
  });
});

describe('intake lanes', () => {
  it('a lane starts only when the schedule has been quiet for a window, and leaves at least one send per window to it', () => {
    expect(grantLane(state({ lastSlot: T - 500 }), 10, 'a', 5, T, S)).toBeUndefined();
    const g = grantLane(state({ lastSlot: T - 2_000 }), 10, 'a', 50, T, S);
    expect(g?.lane).toEqual({ r: 9, until: T + S.laneMs });
    expect(grantLane(state({ lanes: { b: { r: 9, until: T + 5_000 } } }), 10, 'a', 5, T, S)).toBeUndefined();
    expect(grantLane(state(), 1.5, 'a', 1, T, S)).toBeUndefined();
    expect(grantLane(state({ pausedUntil: T + 1 }), 10, 'a', 1, T, S)).toBeUndefined();
  });

  it('the schedule slows while a lane (and one window after it) lasts', () => {
    const s = state({ lanes: { a: { r: 5, until: T + 10_000 } } });
    expect(slotInterval(s, 10, T + 9_000, S)).toBeCloseTo(1030 / 5);
    expect(slotInterval(s, 10, T + 10_500, S)).toBeCloseTo(1030 / 5);
    expect(slotInterval(s, 10, T + 11_100, S)).toBeCloseTo(1030 / 10);
  });

  it('a renewal keeps r and is refused once slots were placed assuming the lane had ended', () => {
    const s = state({ lanes: { a: { r: 4, until: T + 1_000 } }, lastSlot: T + 1_500 });
    expect(grantLane(s, 10, 'a', 9, T, S)?.lane).toEqual({ r: 4, until: T + S.laneMs });
    expect(grantLane({ ...s, lastSlot: T + 2_500 }, 10, 'a', 4, T, S)).toBeUndefined();
  });

  it.each<[string, Partial<LimiterState>, boolean]>([
    ['the rate still leaves room for it: renewed', { rate: 7 }, true],
    ['the rate fell below what it and one shared send take (429s): not renewed, it runs out', { rate: 4.9 }, false],
    ['a lower limit learnt from the headers: not renewed', { learnedRate: 5 }, false],
    ['exactly room for it and one shared send (6/s): renewed', { rate: 6 }, true],
    ['with another lane of 4 beside it at 9/s: not renewed', { rate: 9, lanes: { b: { r: 4, until: T + 4_000 } } }, false],
  ])('a lane of 5 at 10/s after a change: %s', (_name, over, renewed) => {
    const s = state({ ...over, lanes: { a: { r: 5, until: T + 1_000 }, ...over.lanes } });
    expect(grantLane(s, 10, 'a', 5, T, S) !== undefined).toBe(renewed);
  });

  it('lane sends plus schedule slots still fit the window', () => {
    let s = state({ lastSlot: T - 5_000 });
    const g = grantLane(s, 10, 'a', 4, T, S);
    s = g?.state as LimiterState;
    const lane: number[] = [];
    for (let i = 0; i < 40; i++) lane.push(nextLaneSend(lane, 4, lane.at(-1) ?? T, S));
    const slots = reserveSlots(s, 10, T, 60, T + 9_000, S).slots;
    expect(maxInWindow([...lane.filter((t) => t < T + S.laneMs), ...slots])).toBeLessThanOrEqual(10);
  });

  it.each<[string, number[], number, number, number]>([
    ['first send: now', [], 3, T, T],
    ['spaced by window / r', [T], 3, T, T + 1030 / 3],
    ['r sends in the window (a burst before): wait for the oldest to leave it', [T, T + 10, T + 20], 3, T + 30, T + 1030],
  ])('nextLaneSend: %s', (_n, sent, r, now, expected) => {
    expect(nextLaneSend(sent, r, now, S)).toBeCloseTo(expected);
  });

  it('a send may leave at most lateMs after its slot', () => {
    expect(slotUsable(T, T + 20, S)).toBe(true);
    expect(slotUsable(T, T + 21, S)).toBe(false);
  });
});

describe('the rate controller', () => {
  it('a lone 429 only pauses for the stated wait (one late send); repeated ones decrease the rate multiplicatively, once per window', () => {
    const lone = on429(state(), 10, T, 5_000, S);
    expect(lone).toMatchObject({ pausedUntil: T + 5_000, next: T + 5_000, lastLimitedAt: T });
    expect(lone.rate).toBeUndefined();
    const again = on429(lone, 10, T + 3_000, 1_000, S);
    expect(again).toMatchObject({ rate: 7, lastDecreaseAt: T + 3_000 });
    expect(on429(again, 10, T + 3_200, 1_000, S).rate).toBe(7);
    expect(on429(again, 10, T + 4_200, undefined, S).rate).toBeCloseTo(4.9);
    // Long after the last one, a 429 is lone again.
    expect(on429(again, 10, T + 3_000 + REPEATED_429_MS + 1, 1_000, S).rate).toBe(7);
    expect(on429(state({ rate: 0.25, lastLimitedAt: T - 1 }), 10, T, 1, S).rate).toBe(S.minRate);
  });

  it('probes upward additively: one send per second more after five seconds without a 429, one step per spell, up to the ceiling', () => {
    const low = state({ rate: 5, lastDecreaseAt: T });
    expect(raiseRate(low, 10, T + 4_999).rate).toBe(5);
    // One step per probe, however long the quiet was: the step must hold for a spell before the next.
    const once = raiseRate(low, 10, T + 10_000);
    expect(once).toMatchObject({ rate: 6, lastIncreaseAt: T + 10_000 });
    expect(raiseRate(once, 10, T + 14_999).rate).toBe(6);
    let s1: LimiterState = once;
    for (let t = T + 15_000; t <= T + 40_000; t += 5_000) s1 = raiseRate(s1, 10, t);
    expect(s1.rate).toBeUndefined();
    expect(currentRate(s1, 10)).toBe(10);
  });

  it('the configured rate is a ceiling; a lower limit the downstream states is learnt', () => {
    expect(currentRate(state({ rate: 50 }), 10)).toBe(10);
    expect(currentRate(learn(state(), 10, { limit: 30, windowMs: 10_000 }, T), 10)).toBe(3);
    expect(currentRate(learn(state(), 10, { limit: 300, windowMs: 10_000 }, T), 10)).toBe(10);
    expect(learn(state(), 10, { remaining: 0, resetMs: 2_000 }, T)).toMatchObject({ pausedUntil: T + 2_000, next: T + 2_000 });
    expect(learn(state(), 10, { remaining: 3, resetMs: 2_000 }, T).pausedUntil).toBe(0);
  });

  it.each<[string, Record<string, string>, ReturnType<typeof rateInfoFrom>]>([
    ['IETF policy and fields', { 'RateLimit-Policy': '10;w=1', 'RateLimit-Remaining': '0', 'RateLimit-Reset': '2' }, { limit: 10, windowMs: 1_000, remaining: 0, resetMs: 2_000 }],
    ['combined RateLimit header', { RateLimit: 'limit=10, remaining=4, reset=1' }, { limit: 10, remaining: 4, resetMs: 1_000 }],
    ['X-RateLimit with an epoch reset', { 'X-RateLimit-Limit': '100', 'X-RateLimit-Remaining': '0', 'X-RateLimit-Reset': String((EPOCH + 3_000) / 1000) }, { limit: 100, remaining: 0, resetMs: 3_000 }],
    ['nothing said', { 'content-type': 'application/json' }, undefined],
  ])('reads %s', (_n, headers, expected) => {
    expect(rateInfoFrom(headers, EPOCH)).toEqual(expected);
  });
});

describe('releaseLane: a lane given back early', () => {
  const lane = { r: 5, until: T + 4_000 };
  it.each<[string, number[], number[] | undefined]>([
    // Two paced windows are kept: a 429 for a send made a round trip ago is measured against the window before it.
    ['its sends of the last two paced windows become known sends', [T - 2_500, T - 1_500, T - 300, T - 100.5], [T - 1_500, T - 300, T - 100]],
    ['a send promised ahead is known too', [T - 100, T + 150], [T - 100, T + 150]],
    ['only sends older than two paced windows: none kept', [T - 3_000, T - 2_061], undefined],
    ['nothing sent: none', [], undefined],
  ])('%s; the lane stops counting', (_name, sends, recent) => {
    const s1 = releaseLane(state({ lanes: { me: lane, other: { r: 2, until: T + 9_000 } } }), 'me', sends, T, S) as LimiterState;
    expect(s1.lanes).toEqual({ other: { r: 2, until: T + 9_000 } });
    expect(s1.recent).toEqual(recent);
  });

  it('merges with the sends already known, oldest first, and forgets those older than two windows', () => {
    const s1 = releaseLane(state({ lanes: { me: lane }, recent: [T - 2_100, T - 2_000, T - 200, T + 50] }), 'me', [T - 250, T - 100], T, S) as LimiterState;
    expect(s1.recent).toEqual([T - 2_000, T - 250, T - 200, T - 100, T + 50]);
  });

  it('no lane of its own: nothing to write', () => {
    expect(releaseLane(state(), 'me', [T - 10], T, S)).toBeUndefined();
  });

  it.each([1, 3, 5])('after %i lane sends, the shared slots placed at the release never put more than R in a rolling second', (k) => {
    const R = 10;
    const sent: number[] = [];
    for (let i = 0; i < k; i++) sent.push(nextLaneSend(sent, 5, T - 1_000 + i, S));
    const granted = state({ lanes: { me: { r: 5, until: T + 4_000 } } });
    const released = releaseLane(granted, 'me', sent, sent[sent.length - 1] as number, S) as LimiterState;
    const now = sent[sent.length - 1] as number;
    const shared = reserveSlots(released, R, now, 40, Infinity, S).slots;
    // Each send may arrive up to the margin late.
    const rng = seededRandom(k);
    const arrivals = [...sent, ...shared].map((t) => t + rng() * S.marginMs);
    expect(maxInWindow(arrivals)).toBeLessThanOrEqual(R);
    // And sooner than when the lane kept counting its full r for a window after its last send.
    const kept = reserveSlots(state({ lanes: { me: { r: 5, until: now } } }), R, now, 40, Infinity, S).slots;
    expect(shared[39] as number).toBeLessThan(kept[39] as number);
  });

  it('shared slots placed beside known sends, some of them ahead (promised on a lane given back), never put more than R in a paced window (randomised, seeded)', () => {
    const random = seededRandom(11);
    for (let trial = 0; trial < 300; trial++) {
      const R = 2 + Math.floor(random() * 12);
      const r = 1 + Math.floor(random() * Math.max(1, Math.floor(R / 2)));
      // A lane's sends from up to 1.5 s before the release to 1 s after it, at its own pace.
      const lane: number[] = [];
      for (let t = T - 1_500 + random() * 500; t < T + 1_000; t += random() * 600) lane.push(nextLaneSend(lane, r, t, S));
      const before = reserveSlots(state({ lanes: { me: { r, until: T + 4_000 } } }), R, T - 1_500, Math.floor(random() * 8), T, S);
      const released = releaseLane(before.state, 'me', lane, T, S) as LimiterState;
      const slots = reserveSlots(released, R, T, 1 + Math.floor(random() * 30), Infinity, S).slots;
      const known = lane.filter((t) => t > T - pacedWindowOf());
      expect(maxInWindow([...lane, ...before.slots, ...slots], pacedWindowOf())).toBeLessThanOrEqual(R);
      // None placed where it did not have to wait: the first goes at once unless a window is full.
      if (maxInWindow([...known, T], pacedWindowOf()) <= R && before.slots.length === 0) expect(slots[0]).toBe(T);
    }
  });

  it('a drain that starts beside a lane: after the release every window is full again, never over R (the shape `npm run bench` saw)', () => {
    // Lane of 5 per window and the shared schedule at the other 5 for 900 ms, then the lane goes back.
    const R = 10;
    let s = state({ lanes: { me: { r: 5, until: T + 5_000 } } });
    const lane: number[] = [];
    for (let i = 0; i < 5; i++) lane.push(nextLaneSend(lane, 5, T, S));
    const first = reserveSlots(s, R, T, 5, T + 900, S);
    s = releaseLane(first.state, 'me', lane, T + 900, S) as LimiterState;
    const after = reserveSlots(s, R, T + 900, 40, Infinity, S).slots;
    const all = [...lane, ...first.slots, ...after];
    expect(maxInWindow(all, pacedWindowOf())).toBeLessThanOrEqual(R);
    // 50 sends: the first ten in the first window, then R per paced window; counting the lane as r for a
    // window after the release left its second window at five.
    const inSecondWindow = all.filter((t) => t >= T + 1_030 && t < T + 2_060).length;
    expect(inSecondWindow).toBe(R);
    const old = reserveSlots(state({ lanes: { me: { r: 5, until: T + 900 } }, next: first.state.next, lastSlot: first.state.lastSlot }), R, T + 900, 40, Infinity, S).slots;
    expect(after[39] as number).toBeLessThan((old[39] as number) - 300);
  });
});

describe('endPreviousRun: the schedule a killed process booked', () => {
  it.each<[string, Partial<LimiterState>, Partial<LimiterState> | 'unchanged']>([
    ['nothing booked ahead: unchanged', { next: T - 5_000, lastSlot: T - 5_103 }, 'unchanged'],
    ['booked within a window: unchanged', { next: T + 500, lastSlot: T + 397 }, 'unchanged'],
    ['booked 30 s ahead: new slots from one paced window on', { next: T + 30_000, lastSlot: T + 29_897 }, { next: T + 1_030, lastSlot: T + 1_030, lanes: {} }],
    ['a lane it held: dropped, and the schedule restarts a window on (its sends were not in it)', { next: T - 5_000, lastSlot: T - 5_103, lanes: { dead: { r: 5, until: T + 3_000 } } }, { next: T + 1_030, lastSlot: T, lanes: {} }],
    ['booked 30 s ahead, its slots known: the ones never reached are forgotten', { next: T + 30_000, lastSlot: T + 29_897, recent: [T - 500, T - 397, T + 29_897] }, { next: T + 1_030, recent: [T - 500, T - 397] }],
    ['a lane that ended long ago: dropped, and the slots booked ahead given up', { next: T + 30_000, lastSlot: T + 29_897, lanes: { dead: { r: 5, until: T - 10_000 } } }, { next: T + 1_030, lastSlot: T + 1_030, lanes: {} }],
  ])('%s', (_name, before, after) => {
    const s0 = state(before);
    const s1 = endPreviousRun(s0, T, S);
    if (after === 'unchanged') expect(s1).toBe(s0);
    else expect(s1).toMatchObject(after);
  });

  it('a send the dead process made just before the restart and the first new ones share no window beyond R', () => {
    const R = 5;
    // The dead process's last R sends, the last one just before `T`; it had booked 40 more.
    const dead = Array.from({ length: R }, (_, i) => T - 1 - i * 206);
    let s = state({ next: T + 40 * 206, lastSlot: T + 39 * 206 });
    s = endPreviousRun(s, T, S);
    const fresh = reserveSlots(s, R, T, 20, Infinity, S).slots;
    expect(fresh[0]).toBe(T + 1_030);
    expect(maxInWindow([...dead, ...fresh])).toBeLessThanOrEqual(R);
  });
});
