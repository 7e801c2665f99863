import { describe, expect, it } from 'vitest';
import { Pacer } from '../../../shared/core/pacer.js';
import { EMPTY_LIMITER, type LimiterState } from '../../../shared/core/pacing.js';
import { createLogger } from '../../../shared/log.js';
import type { LimiterStore } from '../../../shared/store/port.js';

const T = 1_000_000;

/** The limiter item in memory, with the same optimistic concurrency as DynamoLimiterStore, counting writes. */
class MemoryLimiter implements LimiterStore {
  state: LimiterState = { ...EMPTY_LIMITER, lanes: {} };
  writes = 0;
  async read(): Promise<LimiterState> {
    return structuredClone(this.state);
  }
  async write(_system: string, state: LimiterState, expectedVer: number): Promise<boolean> {
    if (this.state.ver !== Math.max(expectedVer, 0)) return false;
    this.writes++;
    this.state = { ...structuredClone(state), ver: Math.max(expectedVer, 0) + 1 };
    return true;
  }
}

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
});
