import type { Pacer } from '../../shared/core/pacer.js';
import { DEFAULT_PACING, EMPTY_LIMITER, type LimiterState } from '../../shared/core/pacing.js';
import type { Fence, Outcome } from '../../shared/core/types.js';
import type { Container, World } from './world.js';

/**
 * The shared rate limiter reduced to what the simulation needs of it: permits granted at once or a
 * little ahead (pacing has its own table tests: test/unit/core/pacing.test.ts), fences minted from a
 * counter (the real ones are random: the trace would differ run to run), and the outage state the sweep's
 * probe and the wake-up after recovery depend on (`failingSince`), shared by every container like the
 * limiter item.
 */
export class SimLimiter {
  readonly failingSince = new Map<string, number>();
  private fences = 0;

  constructor(private readonly world: World) {}

  fence(container: string): Fence {
    const n = this.fences++;
    return { id: `${container}.${Math.floor(n / 64)}`, n: n % 64 };
  }

  /** One container's side: a `Pacer` in shape (EngineDeps types it as the class). */
  pacer(container: Container, clock: () => number): Pacer {
    const w = this.world;
    const io = <T>(effect: () => T) => w.io(container, w.rng.int(2, 10), effect);
    const state = (system: string): LimiterState => {
      const since = this.failingSince.get(system);
      return { ...EMPTY_LIMITER, next: clock(), ...(since !== undefined ? { failingSince: since } : {}) };
    };
    const claimEstimate = w.rng.chance(0.5) ? 10 : w.rng.int(25, 80);
    const side = {
      owner: container.name,
      settings: DEFAULT_PACING,
      lanesServeWorkers: false,
      // What claims take here, as the real pacer learns it: some containers think them slow, so a claim
      // starts well ahead of its permit.
      claimEstimateMs: () => claimEstimate,
      noteClaim: () => undefined,
      consumeEstimateMs: () => 10,
      noteConsume: () => undefined,
      mintFence: () => this.fence(container.name),
      seen: (system: string) => state(system),
      holdsLane: () => false,
      // Mostly due now; some permits a little ahead (a backlog's first second), so a send waits for its
      // permit and the container's queued claims take turns meanwhile (EngineDeps.queuedClaims).
      lanePermit: async () => clock() + (w.rng.chance(0.3) ? w.rng.int(30, 400) : 0),
      releaseLane: async () => undefined,
      reserve: async (_system: string, _rate: number, k: number) => Array.from({ length: k }, () => clock()),
      nextFree: () => clock(),
      // No 429 pauses the system here: no slot is ever in a pause.
      pausedAt: () => false,
      rebook: async () => clock(),
      giveBack: async () => undefined,
      moveLaneSend: () => false,
      endPreviousRun: async () => undefined,
      refresh: (system: string) => io(() => state(system)),
      feedback: (system: string, _rate: number, outcome: Outcome) =>
        io((): 'recovered' | undefined => {
          if (outcome.type === 'posted') {
            if (!this.failingSince.has(system)) return undefined;
            this.failingSince.delete(system);
            w.log(container.name, () => `limiter ${system}: outage over (a success)`);
            return 'recovered';
          }
          const outage = outcome.type === 'retryable' || (outcome.type === 'ambiguous' && (outcome.httpStatus === undefined || outcome.httpStatus >= 500));
          if (outage && !this.failingSince.has(system)) {
            this.failingSince.set(system, w.now);
            w.log(container.name, () => `limiter ${system}: failing since now`);
          }
          return undefined;
        }),
    };
    return side as unknown as Pacer;
  }
}
