import { describe, expect, it } from 'vitest';
import { Pacer } from '../../../shared/core/pacer.js';
import { EMPTY_LIMITER, type LimiterState } from '../../../shared/core/pacing.js';
import { createLogger } from '../../../shared/log.js';
import { seededRandom } from '../../../shared/systems/sandbox.js';
import { maxInWindow } from '../../helpers/windows.js';
import type { LimiterStore } from '../../../shared/store/port.js';

/** Two containers on one limiter item; every write takes simulated time (clock moves), some slow. */
class ClockLimiter implements LimiterStore {
  state: LimiterState = { ...EMPTY_LIMITER, lanes: {} };
  constructor(private readonly advance: () => number) {}
  async read(): Promise<LimiterState> {
    await Promise.resolve();
    return structuredClone(this.state);
  }
  async write(_s: string, state: LimiterState, expectedVer: number): Promise<boolean> {
    this.advance();
    await new Promise((r) => setImmediate(r));
    if (this.state.ver !== Math.max(expectedVer, 0)) return false;
    this.state = { ...structuredClone(state), ver: Math.max(expectedVer, 0) + 1 };
    return true;
  }
}

describe('review: Pacer.reserve with a learnt write estimate keeps the strict window', () => {
  for (const seed of Array.from({ length: 60 }, (_, i) => i + 1)) {
    it(`seed ${seed}`, async () => {
      const rnd = seededRandom(seed);
      let now = 1_000_000;
      const store = new ClockLimiter(() => (now += rnd() < 0.1 ? 200 + Math.floor(rnd() * 2000) : Math.floor(rnd() * 40)));
      const pacers = [0, 1].map((i) => new Pacer(store, () => now, createLogger({}, 'silent'), undefined, `c${i}`));
      const sent: number[] = [];
      const rate = 10;
      for (let round = 0; round < 60; round++) {
        await Promise.all(
          Array.from({ length: 1 + Math.floor(rnd() * 4) }, async (_, j) => {
            const p = pacers[j % 2] as Pacer;
            const latest = now + 20 + Math.floor(rnd() * 3_000);
            const k = 1 + Math.floor(rnd() * 5);
            const slots = await p.reserve('cambio', rate, k, latest).catch(() => [] as number[]);
            for (const s of slots) {
              expect(s).toBeLessThanOrEqual(latest);
              if (rnd() < 0.2) await p.giveBack('cambio', rate, s).catch(() => sent.push(s));
              else sent.push(s);
            }
          }),
        );
        now += Math.floor(rnd() * 300);
      }
      expect(maxInWindow(sent, 1_030)).toBeLessThanOrEqual(rate);
    });
  }
});

describe('review: a re-reservation with little time left, behind a slow limiter write', () => {
  it('a late slot offered back when no new slot fits before `latest` is still given back (latest within the write estimate)', async () => {
    let now = 1_000_000;
    // Every write takes 300 ms here: the pacer learns an estimate at its 250 ms cap.
    const store = new ClockLimiter(() => (now += 300));
    const pacer = new Pacer(store, () => now, createLogger({}, 'silent'), undefined, 'c0');
    for (let i = 0; i < 6; i++) await pacer.reserve('cambio', 2, 1, now + 5_000);
    const [slot] = await pacer.reserve('cambio', 2, 1, now + 5_000);
    now = (slot as number) + 100; // its send was late
    // The worker's call: one new slot before `latest` (100 ms away), giving back the late one.
    const again = await pacer.reserve('cambio', 2, 1, now + 100, [slot as number]);
    expect(again).toEqual([]);
    // The late slot was never sent on: the schedule must not go on counting it as a send (on main it did,
    // and the container no longer held it, so no giveBack could reach it).
    expect(store.state.recent).not.toContain(Math.ceil(slot as number));
  });
});
