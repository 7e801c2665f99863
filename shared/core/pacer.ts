import { randomBytes } from 'node:crypto';
import type { Logger } from '../log.js';
import type { LimiterStore } from '../store/port.js';
import {
  DEFAULT_PACING,
  EMPTY_LIMITER,
  grantLane,
  learn,
  nextLaneSend,
  on429,
  reserveSlots,
  type Lane,
  type LimiterState,
  type PacingSettings,
} from './pacing.js';
import type { Fence, Outcome } from './types.js';

/** Fence ids rotate so that no fence item grows past a few kilobytes. */
const FENCES_PER_EPOCH = 1_000;

/**
 * One container's side of the shared limiter (a Lambda container, or the whole local process): its
 * cached view of each system's limiter item, its intake lanes, and the fences it hands out. Writes are
 * conditional on the version last seen; a stale view costs one read and a retry.
 */
export class Pacer {
  readonly owner: string;
  private readonly cache = new Map<string, LimiterState>();
  private readonly lanes = new Map<string, { lane: Lane; sent: number[] }>();
  /** One write at a time per system in this container: concurrent invocations queue here, not at DynamoDB. */
  private readonly locks = new Map<string, Promise<unknown>>();
  private epoch: { id: string; n: number } | undefined;

  constructor(
    private readonly store: LimiterStore,
    private readonly clock: () => number,
    private readonly log: Logger,
    readonly settings: PacingSettings = DEFAULT_PACING,
    owner?: string,
  ) {
    this.owner = owner ?? randomBytes(6).toString('base64url');
  }

  /** A fresh fence for a queued attempt: unique without asking anyone (container id, epoch, counter). */
  mintFence(): Fence {
    if (!this.epoch || this.epoch.n >= FENCES_PER_EPOCH) this.epoch = { id: `${this.owner}.${randomBytes(4).toString('base64url')}`, n: 0 };
    return { id: this.epoch.id, n: this.epoch.n++ };
  }

  /** Runs `change` on the current state and writes what it returns, retrying on a version conflict. */
  private update<T>(system: string, change: (s: LimiterState) => { state: LimiterState; result: T } | undefined): Promise<T | undefined> {
    const previous = this.locks.get(system) ?? Promise.resolve();
    const run = previous.then(
      () => this.write(system, change),
      () => this.write(system, change),
    );
    this.locks.set(system, run);
    return run;
  }

  private async write<T>(system: string, change: (s: LimiterState) => { state: LimiterState; result: T } | undefined): Promise<T | undefined> {
    let current = this.cache.get(system) ?? (await this.read(system));
    for (let i = 0; i < 6; i++) {
      const next = change(current);
      if (!next) return undefined;
      if (next.state === current) return next.result;
      if (await this.store.write(system, next.state, current.ver)) {
        this.cache.set(system, { ...next.state, ver: Math.max(current.ver, 0) + 1 });
        return next.result;
      }
      current = await this.read(system);
    }
    throw new Error(`the ${system} rate limiter kept changing under 6 writes in a row`);
  }

  private async read(system: string): Promise<LimiterState> {
    const state = await this.store.read(system);
    this.cache.set(system, state);
    return state;
  }

  /** The state last seen (no request). */
  seen(system: string): LimiterState {
    return this.cache.get(system) ?? EMPTY_LIMITER;
  }

  /**
   * When this container may send one in-process attempt on its intake lane: within `maxWaitMs`, or
   * undefined (queue it instead). Leases or renews the lane when needed: one write per ~10 s of use.
   */
  async lanePermit(system: string, configured: number, maxWaitMs: number, mayLease = true): Promise<number | undefined> {
    const now = this.clock();
    let mine = this.lanes.get(system);
    const usable = (l: { lane: Lane; sent: number[] } | undefined) => {
      if (!l) return undefined;
      const at = nextLaneSend(l.sent, l.lane.r, now, this.settings);
      // The send must leave before the lane ends, by a margin for clocks.
      return at - now <= maxWaitMs && at < l.lane.until - this.settings.marginMs ? at : undefined;
    };
    let at = usable(mine);
    // A worker only uses a lane its container already holds; leasing one is the intake's business.
    if (at === undefined && mayLease && (!mine || mine.lane.until - now < this.settings.laneMs / 2 || nextLaneSend(mine.sent, mine.lane.r, now, this.settings) >= mine.lane.until)) {
      const want = Math.max(1, Math.floor(configured / 2));
      const lane = await this.update(system, (s) => {
        const g = grantLane(s, configured, this.owner, want, now, this.settings);
        return g ? { state: g.state, result: g.lane } : undefined;
      });
      if (lane) {
        mine = { lane, sent: (mine?.sent ?? []).filter((t) => t > now - 2 * (this.settings.windowMs + this.settings.marginMs)) };
        this.lanes.set(system, mine);
        at = usable(mine);
      }
    }
    if (at === undefined || !mine) return undefined;
    mine.sent.push(at);
    if (mine.sent.length > 64) mine.sent.splice(0, mine.sent.length - 64);
    return at;
  }

  /**
   * Gives the lane back early: the intake has more than its lane carries, so the queue (and the shared
   * schedule) should have the whole rate. The freed capacity is usable a window later (pacing.ts).
   */
  async releaseLane(system: string): Promise<void> {
    const mine = this.lanes.get(system);
    if (!mine) return;
    this.lanes.delete(system);
    const now = this.clock();
    if (mine.lane.until <= now) return;
    await this.update(system, (s) => {
      const lane = s.lanes[this.owner];
      if (!lane || lane.until <= now) return undefined;
      // The lane ends at its last permitted send; sends already promised keep their window.
      const last = Math.max(now, ...mine.sent);
      return { state: { ...s, lanes: { ...s.lanes, [this.owner]: { r: lane.r, until: last } } }, result: true };
    });
  }

  /** Up to `k` shared slots, none later than `latest`, in one conditional write. */
  async reserve(system: string, configured: number, k: number, latest: number): Promise<number[]> {
    const now = this.clock();
    const got = await this.update(system, (s) => {
      const r = reserveSlots(s, configured, now, k, latest, this.settings);
      return r.slots.length === 0 ? undefined : { state: r.state, result: r.slots };
    });
    return got ?? [];
  }

  /** When the shared schedule expects the next free slot (from the last view): for re-queueing without a write. */
  nextFree(system: string): number {
    const s = this.seen(system);
    return Math.max(s.next, s.pausedUntil, this.clock());
  }

  /**
   * What an outcome teaches the shared limiter: a 429 slows every worker of the system (AIMD); rate
   * headers are learnt; the first failure of an outage and the first success after it are recorded.
   * Returns 'recovered' when this success ended an outage (the caller wakes the waiting payments).
   */
  async feedback(system: string, configured: number, outcome: Outcome): Promise<'recovered' | undefined> {
    const now = this.clock();
    const rate = 'rate' in outcome ? outcome.rate : undefined;
    try {
      if (outcome.type === 'rate_limited') {
        this.lanes.delete(system);
        await this.update(system, (s) => {
          const next = learn(on429(s, configured, now, outcome.waitMs, this.settings), configured, rate ?? {}, now);
          return { state: next, result: true };
        });
        return undefined;
      }
      const seen = this.seen(system);
      if (outcome.type === 'posted') {
        const learnt = rate ? learn(seen, configured, rate, now) : seen;
        if (seen.failingSince === undefined && learnt === seen) return undefined;
        const recovered = await this.update(system, (s) => {
          const learnt = rate ? learn(s, configured, rate, now) : s;
          if (learnt.failingSince === undefined) return learnt === s ? undefined : { state: learnt, result: false };
          const { failingSince: _f, ...rest } = learnt;
          return { state: rest, result: true };
        });
        return recovered ? 'recovered' : undefined;
      }
      const outage = outcome.type === 'retryable' || (outcome.type === 'ambiguous' && (outcome.httpStatus === undefined || outcome.httpStatus >= 500));
      if (outage && seen.failingSince === undefined) {
        await this.update(system, (s) => (s.failingSince !== undefined ? undefined : { state: { ...s, failingSince: now }, result: true }));
      }
    } catch (err) {
      // Feedback is advice: losing it slows adaptation, it never loses a payment.
      this.log.warn('rate limiter feedback not recorded', { system, error: err });
    }
    return undefined;
  }

  /** Reads the shared state afresh (the sweep asks which systems are failing). */
  async refresh(system: string): Promise<LimiterState> {
    return this.read(system);
  }
}
