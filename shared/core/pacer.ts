import { randomBytes } from 'node:crypto';
import type { Logger } from '../log.js';
import type { LimiterStore } from '../store/port.js';
import {
  DEFAULT_PACING,
  EMPTY_LIMITER,
  endPreviousRun,
  fits,
  givenBack,
  grantLane,
  learn,
  nextLaneSend,
  releaseLane,
  on429,
  pacedWindow,
  reserveSlots,
  pauseAfter429Ms,
  type Lane,
  type LimiterState,
  type PacingSettings,
} from './pacing.js';
import type { Fence, Outcome } from './types.js';

/**
 * Fence ids rotate every 64 attempts: a consume writes the whole item, billed per kilobyte, and 64
 * consumed attempts (about 13 bytes each) keep it under one write unit.
 */
const FENCES_PER_EPOCH = 64;

/**
 * One container's side of the shared limiter (a Lambda container, or the whole local process): its
 * cached view of each system's limiter item, its intake lanes, and the fences it hands out. Writes are
 * conditional on the version last seen; a stale view costs one read and a retry.
 */
export class Pacer {
  readonly owner: string;
  private readonly cache = new Map<string, LimiterState>();
  /** This container's current lane per system. */
  private readonly lanes = new Map<string, Lane>();
  /** This container's recent lane sends per system (outliving any one lane: they count in its window). */
  private readonly laneSends = new Map<string, number[]>();
  /** After a release: no lane for this system before this time. */
  private readonly noLaneUntil = new Map<string, number>();
  /** One write at a time per system in this container: concurrent invocations queue here, not at DynamoDB. */
  private readonly locks = new Map<string, Promise<unknown>>();
  /**
   * One lane decision at a time per system: checking the lane, leasing it and handing out a permit must
   * be one step, or concurrent requests each see the same free send (50 of them sent in one second).
   */
  private readonly laneLocks = new Map<string, Promise<unknown>>();
  private epoch: { id: string; n: number } | undefined;
  /** Per system: the shared slots this container was handed, and when (a 429 since then makes them stale). */
  private readonly booked = new Map<string, Map<number, number>>();
  /** Per system: stale slots taken again (`rebook`), old → new. */
  private readonly rebooked = new Map<string, Map<number, number>>();
  private readonly rebookLocks = new Map<string, Promise<unknown>>();
  /** Per system: slots stopped on their socket, to be given back by the next write of `giveBack`. */
  private readonly givingBack = new Map<string, Set<number>>();
  /** Per system: the last 429 this container heard, and the pause it stated. */
  private readonly heard = new Map<string, { at: number; until: number }>();
  /** Per system: when this container's sends that the downstream accepted left (the last two windows). */
  private readonly accepted = new Map<string, number[]>();

  constructor(
    private readonly store: LimiterStore,
    private readonly clock: () => number,
    private readonly log: Logger,
    readonly settings: PacingSettings = DEFAULT_PACING,
    owner?: string,
    /**
     * This container also runs a retry worker (the local stack's process): while the intake holds a
     * lane, that worker sends on it and renews it (in Lambda, intake and workers are separate
     * containers). A lane the intake gives back goes to the shared schedule either way.
     */
    readonly lanesServeWorkers = false,
  ) {
    this.owner = owner ?? randomBytes(6).toString('base64url');
  }

  /** Per system: the configured rate this container was last asked to pace under (written with the item). */
  private readonly ceilings = new Map<string, number>();

  private readonly claims = new DurationEstimate();
  private readonly consumes = new DurationEstimate();
  /** What a write of the limiter item takes here (from 0: nothing is assumed before one was timed). */
  private readonly limiterWrites = new DurationEstimate(0, 0);

  /** How long a claim may take here now: the intake starts its claim that much before its permit. */
  claimEstimateMs(): number {
    return this.claims.estimate();
  }

  noteClaim(ms: number): void {
    this.claims.note(ms);
  }

  /** How long a fence consume may take here now: a parking system's worker starts it that much before the slot. */
  consumeEstimateMs(): number {
    return this.consumes.estimate();
  }

  noteConsume(ms: number): void {
    this.consumes.note(ms);
  }

  /** A fresh fence for a queued attempt: unique without asking anyone (container id, epoch, counter). */
  mintFence(): Fence {
    if (!this.epoch || this.epoch.n >= FENCES_PER_EPOCH) this.epoch = { id: `${this.owner}.${randomBytes(4).toString('base64url')}`, n: 0 };
    return { id: this.epoch.id, n: this.epoch.n++ };
  }

  /** Runs `change` on the current state and writes what it returns, retrying on a version conflict. */
  private update<T>(system: string, change: (s: LimiterState) => { state: LimiterState; result: T } | undefined): Promise<T | undefined> {
    return serially(this.locks, system, () => this.write(system, change));
  }

  private async write<T>(system: string, change: (s: LimiterState) => { state: LimiterState; result: T } | undefined): Promise<T | undefined> {
    let current = this.cache.get(system) ?? (await this.read(system));
    for (let i = 0; i < 6; i++) {
      const next = change(current);
      if (!next) return undefined;
      if (next.state === current) return next.result;
      // The ceiling this container was configured with goes along with a write it makes anyway (for `paybridge limits`).
      const ceiling = this.ceilings.get(system);
      const state = ceiling !== undefined && next.state.ceiling !== ceiling ? { ...next.state, ceiling } : next.state;
      const began = this.clock();
      const written = await this.store.write(system, state, current.ver);
      this.limiterWrites.note(this.clock() - began);
      if (written) {
        this.cache.set(system, { ...state, ver: Math.max(current.ver, 0) + 1 });
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

  /** Whether this container holds a live intake lane for `system` (one that ran out is not held). */
  holdsLane(system: string): boolean {
    const lane = this.lanes.get(system);
    return lane !== undefined && lane.until > this.clock();
  }

  /**
   * When this container may send one in-process attempt on its intake lane: within `maxWaitMs`, or
   * undefined (queue it instead). Leases or renews the lane when needed: one write per ~10 s of use.
   */
  lanePermit(system: string, configured: number, maxWaitMs: number, mayLease = true): Promise<number | undefined> {
    this.ceilings.set(system, configured);
    return serially(this.laneLocks, system, () => this.permit(system, configured, maxWaitMs, mayLease));
  }

  private async permit(system: string, configured: number, maxWaitMs: number, mayLease: boolean): Promise<number | undefined> {
    const now = this.clock();
    const w = this.settings.windowMs + this.settings.marginMs;
    // This container's lane sends of the last two windows: they count whichever lane they went out on.
    const sent = (this.laneSends.get(system) ?? []).filter((t) => t > now - 2 * w);
    this.laneSends.set(system, sent);
    const usable = (lane: Lane | undefined) => {
      if (!lane) return undefined;
      const at = nextLaneSend(sent, lane.r, now, this.settings);
      // The send must leave before the lane ends, by a margin for clocks.
      return at - now <= maxWaitMs && at < lane.until - this.settings.marginMs ? at : undefined;
    };
    let lane = this.lanes.get(system);
    let at = usable(lane);
    // Lease when there is no lane, renew past half its life; a lane that is merely booked up answers no
    // without a request (fifty concurrent requests must not each try to write it).
    const renewable = !lane || lane.until <= now || lane.until - now < this.settings.laneMs / 2;
    // A worker only renews a lane its container holds; leasing one is the intake's business. After a
    // release, no lane until its last send has left the window (the schedule knows those sends until
    // then); after a refused lease, none asked for during a window. A lane whose first send could not
    // come within the wait is not leased at all (its lease and its release would be two writes for nothing).
    if (at === undefined && mayLease && maxWaitMs >= 0 && renewable && now >= (this.noLaneUntil.get(system) ?? 0)) {
      const want = Math.max(1, Math.floor(configured / 2));
      const granted = await this.update(system, (s) => {
        const g = grantLane(s, configured, this.owner, want, now, this.settings);
        return g ? { state: g.state, result: g.lane } : undefined;
      });
      if (granted) {
        lane = granted;
        this.lanes.set(system, granted);
        at = usable(granted);
      } else {
        this.noLaneUntil.set(system, now + this.settings.windowMs);
      }
    }
    if (at === undefined) return undefined;
    // Whole milliseconds, later never earlier: the schedule records a given-back lane's sends so (pacing.ts).
    at = Math.ceil(at);
    sent.push(at);
    if (sent.length > 256) sent.splice(0, sent.length - 256);
    return at;
  }

  /**
   * Whether a send on this container's lane permit `slot`, which can no longer leave within `lateMs` of it
   * (a busy event loop, a slow claim), may leave at `now` instead: when the lane's own sends, the ones
   * promised ahead of it included, leave room for it there (every paced window holding it stays within the
   * lane's r). Far below the rate they do, and the send goes now; a lane booked ahead does not, and the send
   * takes a new permit or the queue as before. The permit then counts at `now` (it may still leave up to
   * `lateMs` after that, as any permit may). A slot of the shared schedule is never moved: other containers
   * place theirs beside it from a view this one cannot see whole. Without a request.
   */
  moveLaneSend(system: string, slot: number, now: number): boolean {
    const lane = this.lanes.get(system);
    const sent = this.laneSends.get(system);
    const i = sent?.indexOf(slot) ?? -1;
    if (!lane || !sent || i < 0) return false;
    const at = Math.ceil(now);
    // Before the lane ends, by the same margin a permit keeps.
    if (at >= lane.until - this.settings.marginMs) return false;
    const others = [...sent.slice(0, i), ...sent.slice(i + 1)];
    if (!fits(others, at, lane.r, pacedWindow(this.settings))) return false;
    // In place (a permit being handed out holds this array), and in order: nextLaneSend reads the last and
    // the r-th last.
    sent.splice(i, 1);
    let j = sent.length;
    while (j > 0 && (sent[j - 1] as number) > at) j--;
    sent.splice(j, 0, at);
    return true;
  }

  /**
   * Gives the lane back early: the intake has more than its lane carries, so the queue (and the shared
   * schedule) should have the whole rate. In the local process too: whichever worker takes the queued
   * payments paces them on the shared schedule, which a kept lane would hold at part of the rate. The
   * lane's sends go to the schedule (`releaseLane` in pacing.ts), whose slots fill what they leave of each
   * window; this container takes no lane until the last of them has left the window.
   */
  releaseLane(system: string): Promise<void> {
    if (!this.lanes.has(system)) return Promise.resolve();
    return serially(this.laneLocks, system, () => this.release(system));
  }

  private async release(system: string): Promise<void> {
    const lane = this.lanes.get(system);
    if (!lane) return;
    this.lanes.delete(system);
    const now = this.clock();
    if (lane.until <= now) return;
    // The lane ends at its last permitted send; sends already promised keep their window.
    const sends = this.laneSends.get(system) ?? [];
    const last = Math.max(now, ...sends);
    this.noLaneUntil.set(system, last + this.settings.windowMs + this.settings.marginMs);
    await this.update(system, (s) => {
      const next = releaseLane(s, this.owner, sends, now, this.settings);
      return next ? { state: next, result: true } : undefined;
    });
  }

  /**
   * Up to `k` shared slots, none later than `latest`, in one conditional write. `unused`: slots this container
   * was handed before and did not send on (the same write stops counting them as sends).
   */
  async reserve(system: string, configured: number, k: number, latest: number, unused: readonly number[] = []): Promise<number[]> {
    this.ceilings.set(system, configured);
    let now = this.clock();
    // Only slots of the shared schedule this container booked: a lane's permit was never counted there, and
    // another's send at the same time must not be taken off in its place.
    const mine = unused.filter((x) => this.booked.get(system)?.has(x));
    const got = await this.update(system, (s) => {
      // Placed from when this write is made (after the writes queued ahead of it), ahead by what a write
      // takes here: the first slot is still usable when the write returns. Placed from when the call began,
      // late sends asking for new slots at once each got one already late, and asked again (issue 23, `npm
      // run load`: 4.7 limiter writes a payment at 250/s).
      now = this.clock();
      const r = reserveSlots(s, configured, now + this.limiterWrites.estimate(), k, latest, this.settings, mine);
      // No slot before `latest` (it may lie within what a write takes here): the slots offered back are still
      // given back in this write, or the schedule would count them as sends and no one could give them back.
      if (r.slots.length === 0) return mine.length === 0 ? undefined : { state: r.state, result: [] as number[] };
      return { state: r.state, result: r.slots };
    });
    const slots = got ?? [];
    let booked = this.booked.get(system);
    if (!booked) this.booked.set(system, (booked = new Map()));
    for (const [slot] of booked) if (slot < now - 2 * (this.settings.windowMs + this.settings.marginMs)) booked.delete(slot);
    // Only once written: slots not given back stay this container's to give back.
    if (got !== undefined) for (const slot of mine) booked.delete(slot);
    for (const slot of slots) booked.set(slot, now);
    return slots;
  }

  /**
   * Whether a send on `slot` would land in a pause this container has learnt of since the slot was handed
   * out (a 429 of its own, or of a send before it): the sender takes a new slot instead of meeting the pause
   * as one more 429. Advice from the last view, without a request.
   */
  pausedAt(system: string, slot: number): boolean {
    const seen = this.seen(system);
    // This container's own 429s count from the moment they are heard, before their write is through.
    const heard = this.heard.get(system);
    if (slot < Math.max(seen.pausedUntil, heard?.until ?? 0)) return true;
    // Taken again already, by another sender's `rebook` (which gives back every stale slot this container
    // holds): the schedule no longer counts it, so it is never sent on; its sender's `rebook` hands it the new one.
    if (this.rebooked.get(system)?.has(slot)) return true;
    // Handed out before the rate was lowered: placed at the pace that met the limit. (A lone 429 lowers
    // nothing: the slots after its pause stand.)
    const bookedAt = this.booked.get(system)?.get(slot);
    return bookedAt !== undefined && seen.lastDecreaseAt !== undefined && bookedAt <= seen.lastDecreaseAt;
  }

  /**
   * A new slot for `slot`, which `pausedAt` calls stale. Every stale slot this container holds is taken again
   * in the same write, in order (their senders are waiting for them too), so a 429 costs one write here, not
   * one per slot booked ahead at the old pace. Undefined when no slot is left before `latest`.
   */
  rebook(system: string, configured: number, slot: number, latest: number): Promise<number | undefined> {
    const done = this.rebooked.get(system)?.get(slot);
    if (done !== undefined) return Promise.resolve(done);
    return serially(this.rebookLocks, system, async () => {
      const map = this.rebooked.get(system) ?? new Map<number, number>();
      this.rebooked.set(system, map);
      const known = map.get(slot);
      if (known !== undefined) return known;
      const now = this.clock();
      for (const [old] of map) if (old < now - 2 * (this.settings.windowMs + this.settings.marginMs)) map.delete(old);
      // Only slots still ahead: one due already may have been sent on (its sender checked before the 429 was
      // heard), and giving it up would drop a real send from the schedule's count. Its sender, if it did not
      // send, asks for itself.
      const stale = [...(this.booked.get(system)?.keys() ?? [])].filter((x) => x > now && !map.has(x) && this.pausedAt(system, x));
      if (!stale.includes(slot)) stale.push(slot);
      stale.sort((a, b) => a - b);
      // Given back by `reserve`, which gives back only slots of the shared schedule this container booked (a
      // lane's permit, which the intake may rebook, was never counted there).
      const fresh = await this.reserve(system, configured, stale.length, latest, stale);
      // Slots are known by their time, and a new one (placed a paced window after a send, as the old pace
      // placed them too) may fall on the time of a stale one: that one stays with the stale slot's own sender
      // (taken again in place, booked afresh), or it would be handed to two. One on the time of a slot taken
      // again before goes to nobody (its holder would be told to take that slot again). The others go in order.
      const rest = stale.filter((old) => !fresh.includes(old));
      for (const next of fresh.filter((x) => !stale.includes(x) && !map.has(x))) {
        const old = rest.shift();
        if (old !== undefined) map.set(old, next);
      }
      return fresh.includes(slot) ? slot : map.get(slot);
    });
  }

  /**
   * Gives back a slot this container booked from the shared schedule and then did not send on (the send was stopped on its socket:
   * late, or withdrawn by a 429's pause), so the schedule stops counting it as a send. Left counted, the
   * withdrawn slots of a burst kept the window full at the lowered rate and the sends after the pause
   * started half a second late. Slots stopped meanwhile go in the same write; a failed write is advice lost
   * (the slots age out of the schedule within two windows).
   */
  giveBack(system: string, configured: number, slot: number): Promise<void> {
    // Only a slot of the shared schedule this container booked: a lane's permit was never counted there.
    if (!this.booked.get(system)?.delete(slot)) return Promise.resolve();
    let pending = this.givingBack.get(system);
    if (!pending) this.givingBack.set(system, (pending = new Set()));
    pending.add(slot);
    return serially(this.rebookLocks, system, async () => {
      const slots = [...pending];
      pending.clear();
      if (slots.length === 0) return;
      try {
        await this.update(system, (st) => {
          const next = givenBack(st, configured, slots, this.settings);
          return next === st ? undefined : { state: next, result: true };
        });
      } catch (err) {
        this.log.warn('rate limiter: unsent slots not given back', { system, error: err });
      }
    });
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
  async feedback(system: string, configured: number, outcome: Outcome, sentAt?: number): Promise<'recovered' | undefined> {
    this.ceilings.set(system, configured);
    const now = this.clock();
    const rate = 'rate' in outcome ? outcome.rate : undefined;
    if (sentAt !== undefined && outcome.type !== 'rate_limited' && 'httpStatus' in outcome && outcome.httpStatus !== undefined && outcome.httpStatus < 500) {
      const accepted = (this.accepted.get(system) ?? []).filter((t) => t > now - 2 * (this.settings.windowMs + this.settings.marginMs));
      accepted.push(sentAt);
      this.accepted.set(system, accepted);
    }
    try {
      if (outcome.type === 'rate_limited') {
        // A 429 means the window is fuller than this container thought: no lane until the pause is over.
        this.lanes.delete(system);
        const wait = pauseAfter429Ms(outcome.waitMs, this.settings);
        this.heard.set(system, { at: now, until: Math.max(this.heard.get(system)?.until ?? 0, now + wait) });
        this.noLaneUntil.set(system, Math.max(this.noLaneUntil.get(system) ?? 0, now + wait));
        // This container's own lane sends are known exactly; other lanes count as their whole share.
        const ownLane = { owner: this.owner, sends: this.laneSends.get(system) ?? [] };
        await this.update(system, (s) => {
          const next = learn(on429(s, configured, now, outcome.waitMs, this.settings, sentAt, ownLane, this.accepted.get(system) ?? []), configured, rate ?? {}, now);
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

  /** At the local stack's boot: gives up the slots and lanes the previous process booked (see `endPreviousRun`). */
  async endPreviousRun(system: string): Promise<void> {
    const now = this.clock();
    await this.update(system, (s) => {
      const next = endPreviousRun(s, now, this.settings);
      return next === s ? undefined : { state: next, result: true };
    });
  }

  /** Reads the shared state afresh (the sweep asks which systems are failing). */
  async refresh(system: string): Promise<LimiterState> {
    return this.read(system);
  }
}

/**
 * How long a write may take here now: the moving average plus one moving deviation (TCP's estimator,
 * with one deviation where its timer takes four). Starting a write that much before its send lets
 * most writes end in time (a send may leave up to `lateMs` after its slot), while the time a record
 * says "sending" before anything is sent stays about one write long.
 */
class DurationEstimate {
  constructor(
    private mean = 10,
    private dev = 5,
  ) {}

  estimate(): number {
    return Math.min(this.mean + this.dev, 250);
  }

  note(ms: number): void {
    this.dev = this.dev * 0.75 + Math.abs(ms - this.mean) * 0.25;
    this.mean = this.mean * 0.875 + ms * 0.125;
  }
}

/** Runs `task` after every task queued before it under `key` (failed or not): a per-key mutex. */
function serially<T>(locks: Map<string, Promise<unknown>>, key: string, task: () => Promise<T>): Promise<T> {
  const previous = locks.get(key) ?? Promise.resolve();
  const run = previous.then(task, task);
  locks.set(key, run);
  return run;
}
