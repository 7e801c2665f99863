import { describe, expect, it } from 'vitest';
import { Pacer } from '../../../shared/core/pacer.js';
import { currentRate, type LimiterState } from '../../../shared/core/pacing.js';
import type { Outcome } from '../../../shared/core/types.js';
import { createLogger } from '../../../shared/log.js';
import { seededRandom } from '../../../shared/systems/sandbox.js';
import { MemoryLimiter } from '../../helpers/limiter.js';
import { maxInWindow } from '../../helpers/windows.js';

const T = 1_000_000;

describe('Pacer: the local process, where the intake and a worker share one container', () => {
  it('the worker sends on the intake lane while it lives, and leases none once it ran out', async () => {
    let now = T;
    const store = new MemoryLimiter();
    const pacer = new Pacer(store, () => now, createLogger({}, 'silent'), undefined, 'local', true);
    const first = await pacer.lanePermit('cambio', 10, 1_000);
    expect(first).toBe(T);
    expect(store.writes).toBe(1);
    expect(pacer.holdsLane('cambio')).toBe(true);
    // Within the lane: a permit without a write.
    now = T + 1_000;
    expect(await pacer.lanePermit('cambio', 10, 5_000, pacer.holdsLane('cambio'))).toBeDefined();
    expect(store.writes).toBe(1);
    // Long after it ended: not held, and the worker's call (may lease only what it holds) writes nothing.
    now = T + 30_000;
    expect(pacer.holdsLane('cambio')).toBe(false);
    expect(await pacer.lanePermit('cambio', 10, 5_000, pacer.holdsLane('cambio'))).toBeUndefined();
    expect(store.writes).toBe(1);
  });

  it('hands out lane sends in whole milliseconds, never earlier than the pace allows', async () => {
    let now = T + 0.4;
    const pacer = new Pacer(new MemoryLimiter(), () => now, createLogger({}, 'silent'), undefined, 'local');
    const a = (await pacer.lanePermit('nif', 7, 1_000)) as number;
    now = a;
    const b = (await pacer.lanePermit('nif', 7, 1_000)) as number;
    expect(Number.isInteger(a) && Number.isInteger(b)).toBe(true);
    expect(a).toBeGreaterThanOrEqual(T + 0.4);
    // A lane of floor(7 / 2) = 3 per paced window: 1030 / 3 ms apart at least.
    expect(b - a).toBeGreaterThanOrEqual(1_030 / 3);
  });

  it('a lane that is not needed within the wait is not leased (no write)', async () => {
    const store = new MemoryLimiter();
    const pacer = new Pacer(store, () => T, createLogger({}, 'silent'), undefined, 'local');
    expect(await pacer.lanePermit('cambio', 10, -1)).toBeUndefined();
    expect(store.writes).toBe(0);
  });
});

describe('Pacer: slots booked and never sent on', () => {
  it('a slot stopped on its socket is given back: the schedule no longer counts it, so the next slot is not pushed a window later', async () => {
    let now = T;
    const store = new MemoryLimiter();
    const pacer = new Pacer(store, () => now, createLogger({}, 'silent'), undefined, 'local');
    // Ten slots at 10/s: a full paced window. Nine are sent; the tenth is stopped on its socket.
    const slots = await pacer.reserve('cambio', 10, 10, T + 5_000);
    expect(slots).toHaveLength(10);
    now = slots[9] as number;
    await pacer.giveBack('cambio', 10, slots[9] as number);
    // Counted as a send, the tenth kept the window full: the next slot would wait for the first to leave it.
    const [next] = await pacer.reserve('cambio', 10, 1, T + 5_000);
    expect(next).toBe(slots[9]);
    // A lane's permit (never on the shared schedule), or a slot given back already: nothing to write.
    const writes = store.writes;
    await pacer.giveBack('cambio', 10, T + 123);
    await pacer.giveBack('cambio', 10, slots[8] as number);
    await pacer.giveBack('cambio', 10, slots[8] as number);
    expect(store.writes).toBe(writes + 1);
  });

  it("a late lane permit the worker takes a new slot for gives back nothing: another container's send at the same time stays counted", async () => {
    let now = T;
    const store = new MemoryLimiter();
    // The local process (its worker sends on the intake's lane) and a second worker with its own view.
    const local = new Pacer(store, () => now, createLogger({}, 'silent'), undefined, 'local', true);
    const other = new Pacer(store, () => now, createLogger({}, 'silent'), undefined, 'other');
    // A lane of 5 per paced window at 10/s: permits 206 ms apart; the shared schedule keeps the other 5, 206 ms apart too.
    const lane = [] as number[];
    for (let i = 0; i < 3; i++) lane.push((await local.lanePermit('cambio', 10, 1_000)) as number);
    now = T + 206;
    const shared = await other.reserve('cambio', 10, 3, T + 5_000);
    expect(shared).toContain(lane[2]);
    // The local worker's send on the third lane permit wakes 38 ms late: it takes a shared slot instead, the
    // permit given up with it (worker.ts). On main that took the other's send at the same time off the schedule.
    now = (lane[2] as number) + 38;
    await local.reserve('cambio', 10, 1, T + 5_000, [lane[2] as number]);
    for (const slot of shared) expect(store.state.recent).toContain(Math.ceil(slot));
  });
});

describe('Pacer: slots from a slow limiter write', () => {
  /** The limiter item behind a write that takes `ms` of real time (a loaded process, a busy table). */
  class SlowLimiter extends MemoryLimiter {
    constructor(private readonly ms: number) {
      super();
    }
    override async write(system: string, state: LimiterState, expectedVer: number): Promise<boolean> {
      await new Promise((r) => setTimeout(r, this.ms));
      return super.write(system, state, expectedVer);
    }
  }

  it('are usable when handed out: placed from when the write is made and by what it takes, not from when the call began (npm run load: 4.7 limiter writes a payment at 250/s)', async () => {
    // Far below the ceiling, late sends of a worker each ask for a new slot at once (worker.ts). Their writes
    // wait for one another; on main each slot was placed from the time its call began, so every one but the
    // first was late by the writes ahead of it, missed by its send and asked for again: at 250/s in `npm run
    // load`, 10,627 limiter writes for 2,316 payments, and a third of them never posted within a minute.
    const pacer = new Pacer(new SlowLimiter(30), Date.now, createLogger({}, 'silent'), undefined, 'local');
    // A few writes first: the pacer learns what one takes here.
    for (let i = 0; i < 4; i++) await pacer.reserve('cambio', 1_000, 1, Date.now() + 5_000);
    const late: number[] = [];
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        const [slot] = await pacer.reserve('cambio', 1_000, 1, Date.now() + 5_000);
        const by = Date.now() - (slot as number);
        if (by > pacer.settings.lateMs) late.push(by);
      }),
    );
    expect(late).toEqual([]);
  });
});

describe('Pacer: stale slots taken again (rebook)', () => {
  /** The sends among `sent` that the schedule does not count (each known send counts one). */
  const uncounted = (state: LimiterState, sent: number[]): number[] => {
    const counted = [...(state.recent ?? [])];
    return sent.filter((t) => {
      const k = counted.indexOf(Math.ceil(t));
      if (k >= 0) counted.splice(k, 1);
      return k < 0;
    });
  };

  it("a slot another sender's rebook took again stays withdrawn for its own sender: it is handed its new slot, never sends on the one given back", async () => {
    let now = T;
    const store = new MemoryLimiter();
    const pacer = new Pacer(store, () => now, createLogger({}, 'silent'), undefined, 'worker');
    // A batch of 40 slots at a configured 25/s (41.2 ms apart); the downstream really allows 10 a second.
    const slots = await pacer.reserve('cambio', 25, 40, T + 5_000);
    expect(slots).toHaveLength(40);
    const posted: Outcome = { type: 'posted', httpStatus: 201, body: {} };
    for (let i = 0; i < 10; i++) {
      now = slots[i] as number;
      await pacer.feedback('cambio', 25, posted, now);
    }
    // The eleventh meets the limit: a pause of 300 ms, and the rate measured at 10 (the ten accepted before it).
    now = (slots[10] as number) + 5;
    await pacer.feedback('cambio', 25, { type: 'rate_limited', httpStatus: 429, waitMs: 300, message: 'Rate limit is exceeded' }, slots[10]);
    expect(currentRate(store.state, 25)).toBe(10);
    // Each sender wakes on its slot and does what the worker and the intake do: a stale slot is taken again
    // (`rebook`: the first one takes every stale slot of this container in one write), any other is sent on.
    const sent = slots.slice(0, 10);
    for (let i = 11; i < 40; i++) {
      now = Math.max(now, slots[i] as number);
      const slot = slots[i] as number;
      sent.push(pacer.pausedAt('cambio', slot) ? ((await pacer.rebook('cambio', 25, slot, now + 5_000)) as number) : slot);
    }
    // On main the slots beyond the pause, placed at the old pace, were sent on after the first rebook had
    // given them back (no longer this container's booked slots, so no longer "stale"): 29 in one second.
    expect(uncounted(store.state, sent.slice(10))).toEqual([]);
    expect(maxInWindow(sent.map((t) => t + 20))).toBeLessThanOrEqual(10);
  });

  it.each([20, 25])('a new slot that falls on the time of a stale one is never handed to two senders (configured %i/s, real 10/s)', async (configured) => {
    let now = T;
    const store = new MemoryLimiter();
    const pacer = new Pacer(store, () => now, createLogger({}, 'silent'), undefined, 'worker');
    const slots = await pacer.reserve('cambio', configured, 40, T + 5_000);
    const posted: Outcome = { type: 'posted', httpStatus: 201, body: {} };
    for (let i = 0; i < 10; i++) {
      now = slots[i] as number;
      await pacer.feedback('cambio', configured, posted, now);
    }
    now = (slots[10] as number) + 5;
    await pacer.feedback('cambio', configured, { type: 'rate_limited', httpStatus: 429, waitMs: 300, message: 'Rate limit is exceeded' }, slots[10]);
    // Every sender wakes on its slot, earliest first, as the worker's do: a stale slot is taken again and the
    // sender sleeps until its new one, where it checks again (up to three times); any other is sent on.
    // New slots are placed one paced window after a send, as the old ones at the old pace were: some fall on
    // the very time of a stale slot, which is how the sender holding it knows its slot.
    let waiting = slots.slice(11).map((slot) => ({ slot, tries: 0 }));
    const sent = slots.slice(0, 10);
    while (waiting.length > 0) {
      waiting.sort((a, b) => a.slot - b.slot);
      const w = waiting.shift() as { slot: number; tries: number };
      now = Math.max(now, w.slot);
      if (!pacer.pausedAt('cambio', w.slot)) sent.push(w.slot);
      else if (w.tries < 3) {
        const again = await pacer.rebook('cambio', configured, w.slot, now + 5_000);
        if (again !== undefined) waiting.push({ slot: again, tries: w.tries + 1 });
      }
    }
    expect(sent.filter((t, i) => sent.indexOf(t) !== i)).toEqual([]);
    expect(uncounted(store.state, sent.slice(10))).toEqual([]);
    expect(maxInWindow(sent.map((t) => t + 20))).toBeLessThanOrEqual(10);
  });
});

describe('Pacer: a lane permit whose send is late', () => {
  it('moves to the time it can leave when the lane has room there, and only then', async () => {
    let now = T;
    const pacer = new Pacer(new MemoryLimiter(), () => now, createLogger({}, 'silent'), undefined, 'local');
    // A lane at 10/s carries r = 5 per paced window (1,030 ms): permits 206 ms apart.
    const permits: number[] = [];
    for (let i = 0; i < 11; i++) permits.push((await pacer.lanePermit('cambio', 10, 3_000)) as number);
    expect(permits.slice(0, 3)).toEqual([T, T + 206, T + 412]);
    // The second permit's send is held up 500 ms: with nine permits ahead of it, the windows there are full.
    expect(pacer.moveLaneSend('cambio', T + 206, T + 706)).toBe(false);
    // The last one held up 40 ms: nothing booked after it, so it may go then, counted where it goes.
    const last = permits[10] as number;
    expect(pacer.moveLaneSend('cambio', last, last + 40)).toBe(true);
    // The next permit keeps the window bound with the moved send: r-th last + one window, 206 ms after it.
    now = last + 40;
    const next = (await pacer.lanePermit('cambio', 10, 3_000)) as number;
    expect(next).toBeGreaterThanOrEqual(last + 40 + 206);
    // A slot the lane never handed out (the shared schedule's) is not moved.
    expect(pacer.moveLaneSend('cambio', T + 5, T + 50)).toBe(false);
  });

  it('never lets the lane put more than r sends in a paced window, however late its sends are (randomised, seeded)', async () => {
    const random = seededRandom(11);
    let now = T;
    const pacer = new Pacer(new MemoryLimiter(), () => now, createLogger({}, 'silent'), undefined, 'local');
    const left: number[] = [];
    let moved = 0;
    // Sends waiting to leave, in the order time brings them: each on time, or late, when it moves if it may.
    let waiting: { permit: number; leaves: number }[] = [];
    const leaveUntil = (t: number) => {
      for (const w of waiting.filter((x) => x.leaves <= t).sort((a, b) => a.leaves - b.leaves)) {
        if (w.leaves - w.permit <= 20) left.push(w.leaves);
        else if (pacer.moveLaneSend('cambio', w.permit, w.leaves)) {
          moved++;
          // Counted from where it moved to, it may still leave up to lateMs after that.
          left.push(Math.ceil(w.leaves) + random() * 20);
        }
      }
      waiting = waiting.filter((x) => x.leaves > t);
    };
    for (let i = 0; i < 600; i++) {
      // Bursts and lulls: the lane is booked ahead at times, idle at others.
      const next = now + (random() < 0.8 ? Math.floor(random() * 40) : Math.floor(random() * 1_500));
      leaveUntil(next);
      now = next;
      const permit = await pacer.lanePermit('cambio', 10, 1_000);
      if (permit === undefined) continue;
      // Most sends leave on time; one in five up to 800 ms late.
      waiting.push({ permit, leaves: Math.max(now, permit) + (random() < 0.8 ? random() * 20 : random() * 800) });
    }
    leaveUntil(Infinity);
    expect(moved).toBeGreaterThan(10);
    const sorted = [...left].sort((a, b) => a - b);
    for (let i = 5; i < sorted.length; i++) expect((sorted[i] as number) - (sorted[i - 5] as number)).toBeGreaterThanOrEqual(1_000);
  });
});
