import { describe, expect, it } from 'vitest';
import { Pacer } from '../../../shared/core/pacer.js';
import { EMPTY_LIMITER, limitStatus, PROBE_EVERY_MS, type LimiterState } from '../../../shared/core/pacing.js';
import type { Outcome } from '../../../shared/core/types.js';
import { createLogger } from '../../../shared/log.js';
import { MemoryLimiter } from '../../helpers/limiter.js';

const T = 1_000_000;

describe('limitStatus: what an operator is shown of a limiter (issue 23: the learnt rate shown)', () => {
  it('at the ceiling: the configured rate paced, nothing learnt, no probe', () => {
    expect(limitStatus({ ...EMPTY_LIMITER, ver: 3, ceiling: 10 }, undefined, T)).toEqual({ configured: 10, pacedNow: 10 });
    // The caller's configuration wins over what the item's last writer had.
    expect(limitStatus({ ...EMPTY_LIMITER, ver: 3, ceiling: 10 }, 25, T)).toEqual({ configured: 25, pacedNow: 25 });
  });

  it('lowered by 429s: the learnt rate, the rate paced now, when the next probe may raise it', () => {
    const state: LimiterState = { ...EMPTY_LIMITER, ver: 9, ceiling: 25, rate: 10, lastDecreaseAt: T - 3_000, lastLimitedAt: T - 3_000, probeEveryMs: 20_000, pausedUntil: T + 700 };
    expect(limitStatus(state, undefined, T)).toEqual({
      configured: 25,
      pacedNow: 10,
      learnt: 10,
      nextProbeAt: T + 17_000,
      pausedUntil: T + 700,
      lastLimitedAt: T - 3_000,
      lastDecreaseAt: T - 3_000,
    });
    // Once the spell has passed, the probe is due: the rate paced counts it in, as the next reservation would.
    const due = limitStatus(state, undefined, T + 21_000);
    expect(due).toMatchObject({ pacedNow: 11, learnt: 10, nextProbeAt: T + 21_000 });
    expect(due.pausedUntil).toBeUndefined();
  });

  it('a limit the downstream stated, an outage, and a learnt rate no longer below a lowered ceiling', () => {
    expect(limitStatus({ ...EMPTY_LIMITER, ver: 2, learnedRate: 4, failingSince: T - 60_000 }, 10, T)).toEqual({ configured: 10, pacedNow: 4, stated: 4, failingSince: T - 60_000 });
    // Configured down to 8 after 10 was learnt: the ceiling is what paces, and nothing is "learnt" below it.
    expect(limitStatus({ ...EMPTY_LIMITER, ver: 2, rate: 10, lastDecreaseAt: T }, 8, T)).toEqual({ configured: 8, pacedNow: 8, lastDecreaseAt: T });
    // No ceiling known at all (an item written before the ceiling was kept): what it learnt, still.
    expect(limitStatus({ ...EMPTY_LIMITER, ver: 2, rate: 6, lastDecreaseAt: T }, undefined, T)).toEqual({ pacedNow: 6, learnt: 6, nextProbeAt: T + PROBE_EVERY_MS, lastDecreaseAt: T });
  });

  it('the pacer keeps its configured ceiling on the item with the writes it makes anyway', async () => {
    let now = T;
    const store = new MemoryLimiter();
    const pacer = new Pacer(store, () => now, createLogger({}, 'silent'), undefined, 'worker');
    const slots = await pacer.reserve('cambio', 25, 12, T + 5_000);
    expect(store.state.ceiling).toBe(25);
    const posted: Outcome = { type: 'posted', httpStatus: 201, body: {} };
    for (let i = 0; i < 10; i++) {
      now = slots[i] as number;
      await pacer.feedback('cambio', 25, posted, now);
    }
    now = (slots[10] as number) + 5;
    await pacer.feedback('cambio', 25, { type: 'rate_limited', httpStatus: 429, waitMs: 1_000, message: 'Rate limit is exceeded' }, slots[10]);
    expect(limitStatus(store.state, undefined, now)).toMatchObject({ configured: 25, pacedNow: 10, learnt: 10, lastLimitedAt: now });
    // Another container configured otherwise writes next: the item says what its last writer had.
    const other = new Pacer(store, () => now, createLogger({}, 'silent'), undefined, 'other');
    await other.reserve('cambio', 20, 1, now + 5_000);
    expect(store.state.ceiling).toBe(20);
  });
});
