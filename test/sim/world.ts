// The sandboxes' own seeded generator (mulberry32): one generator per seed.
import { seededRandom } from '../../shared/systems/sandbox.js';
/**
 * The simulation's scheduler (issue 19): simulated time, a seeded random source, and every pending
 * operation of every actor in one queue ordered by the simulated time it completes at. The engine runs
 * its real code against ports whose calls are operations here; the scheduler completes one at a time,
 * lets every consequence of it run (all microtasks), and only then picks the next. Nothing reads the
 * real clock or waits on a real timer, so one seed is one run, step for step.
 */

export class Rng {
  constructor(readonly next: () => number) {}
  /** True with probability `p`. */
  chance(p: number): boolean {
    return p > 0 && this.next() < p;
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)] as T;
  }
}

/**
 * A process that can die: a Lambda container, the local stack's process. Its operations complete only
 * while it lives; a crash drops all of them (their promises never settle) and fires its stopping signal.
 */
export class Container {
  dead = false;
  readonly controller = new AbortController();
  constructor(readonly name: string) {}
}

interface Op {
  due: number;
  seq: number;
  container: Container | undefined;
  run: () => void;
}

/** A binary min-heap on (due, seq): ties complete in the order they were scheduled. */
class OpQueue {
  private readonly items: Op[] = [];
  get size(): number {
    return this.items.length;
  }
  private less(a: Op, b: Op): boolean {
    return a.due < b.due || (a.due === b.due && a.seq < b.seq);
  }
  push(op: Op): void {
    const h = this.items;
    h.push(op);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i] as Op, h[p] as Op)) break;
      [h[i], h[p]] = [h[p] as Op, h[i] as Op];
      i = p;
    }
  }
  peek(): Op | undefined {
    return this.items[0];
  }
  pop(): Op | undefined {
    const h = this.items;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l] as Op, h[m] as Op)) m = l;
        if (r < h.length && this.less(h[r] as Op, h[m] as Op)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m] as Op, h[i] as Op];
        i = m;
      }
    }
    return top;
  }
}

/** Lets every microtask queued so far (and every one those queue) run: the engine has done all it can. */
const settleMicrotasks = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * A cheaper pause after a step: `ticks` microtask turns. Chains longer than that simply continue after
 * the next step, as on a busy CPU; the order is still fixed by the program, so still one run per seed.
 * A full settle (a macrotask turn) is taken whenever the queue looks empty, so no work is ever missed.
 */
async function yieldTicks(ticks: number): Promise<void> {
  for (let i = 0; i < ticks; i++) await undefined;
}

export const SIM_EPOCH = Date.UTC(2026, 0, 5, 8, 0, 0);

export class World {
  now = SIM_EPOCH;
  readonly rng: Rng;
  private seq = 0;
  private readonly ops = new OpQueue();
  /** One line per event when tracing (`--seed S`); undefined in bulk runs, where lines are not even built. */
  readonly lines: string[] | undefined;
  steps = 0;

  constructor(seed: number, trace: boolean) {
    this.rng = new Rng(seededRandom(seed));
    this.lines = trace ? [] : undefined;
  }

  /** Adds a trace line; `text` is a function so bulk runs pay nothing for it. */
  log(actor: string, text: () => string): void {
    if (this.lines) this.lines.push(`${fmtTime(this.now - SIM_EPOCH)} ${actor.padEnd(12)} ${text()}`);
  }

  private schedule(due: number, container: Container | undefined, run: () => void): void {
    this.ops.push({ due, seq: this.seq++, container, run });
  }

  /**
   * One port call: completes `latencyMs` from now (if `container` still lives then), applying `effect`
   * at that moment. `applyIfDead`: a request already on the wire still reaches the other side when its
   * sender dies (a write lands, a POST is stored); nobody hears the answer.
   */
  io<T>(container: Container | undefined, latencyMs: number, effect: () => T, applyIfDead = false): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.schedule(this.now + latencyMs, container, () => {
        if (container?.dead) {
          if (applyIfDead) {
            try {
              effect();
            } catch {
              // Nobody is listening.
            }
          }
          return;
        }
        try {
          resolve(effect());
        } catch (err) {
          reject(err);
        }
      });
    });
  }

  sleep(container: Container | undefined, ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      this.schedule(this.now + Math.max(0, ms), container, () => {
        if (!container?.dead) resolve();
      });
    });
  }

  /** Starts an actor's task at `at` (in `container`, which must still live then). */
  spawn(container: Container | undefined, at: number, task: () => Promise<void>, onError: (err: unknown) => void): void {
    this.schedule(Math.max(at, this.now), container, () => {
      if (container?.dead) return;
      task().catch(onError);
    });
  }

  /**
   * Runs operations in order of completion time until none is left before `until`, calling `check`
   * after every step. Returns false when `maxSteps` ran out (a livelock is a finding too).
   */
  async run(until: number, check: () => void, maxSteps: number, ticks = 0): Promise<boolean> {
    await settleMicrotasks();
    for (;;) {
      if (this.stopped) return true;
      let next = this.ops.peek();
      if (!next || next.due > until) {
        // Nothing due: make sure no chain is still running before calling it quiet.
        await settleMicrotasks();
        next = this.ops.peek();
        if (!next || next.due > until) break;
      }
      if (this.steps++ >= maxSteps) return false;
      this.ops.pop();
      if (next.due > this.now) this.now = next.due;
      next.run();
      if (ticks > 0) await yieldTicks(ticks);
      else await settleMicrotasks();
      check();
    }
    if (until > this.now && until !== Number.POSITIVE_INFINITY) this.now = until;
    return true;
  }

  private stopped = false;

  /** Ends the run after the current step. */
  stop(): void {
    this.stopped = true;
  }

  /** Lets a stopped world run again (the final relay pass after the run: test/sim/sim.ts). */
  resume(): void {
    this.stopped = false;
  }

  pendingOps(): number {
    return this.ops.size;
  }
}

function fmtTime(ms: number): string {
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `+${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}.${String(ms % 1000).padStart(3, '0')}`;
}
