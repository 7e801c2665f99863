/**
 * Pacing against a strict rolling window, as pure functions (issue 11).
 *
 * Azure API Management's `rate-limit` policy (in front of Cambio and NIF) refuses a call when the last
 * renewal period already holds `calls` accepted calls. Sends spaced exactly 1/R apart are not enough:
 * a send that leaves late, or travels a little longer, lands R + 1 calls in one rolling second. So a
 * send is only ever made within `lateMs` after its slot, and slots are spaced so that even then no
 * window can hold more than R: with slots `I` apart and arrivals up to `marginMs` late,
 * R·I ≥ windowMs + marginMs is sufficient, so I = (windowMs + marginMs) / R.
 *
 * Every worker of a system shares one schedule (a DynamoDB item per system, updated with optimistic
 * concurrency): a worker takes several slots in one conditional write, sized to its batch. The HTTP
 * routes' first attempts would cost one write each that way, so an intake container leases a *lane*
 * instead: `r` sends per window for ~10 s, paced locally, which the shared schedule leaves room for.
 */

export interface PacingSettings {
  /** The downstream's counting window (APIM `renewal-period`): 1 s for a calls-per-second limit. */
  windowMs: number;
  /** Lateness plus network jitter allowed for: the schedule paces to `windowMs + marginMs`. */
  marginMs: number;
  /** A send more than this after its slot is not made on that slot (it takes a new one). < marginMs. */
  lateMs: number;
  /** How long an intake lane is leased for. */
  laneMs: number;
  /** The controller never goes below this rate (sends per second). */
  minRate: number;
}

export const DEFAULT_PACING: PacingSettings = { windowMs: 1_000, marginMs: 30, lateMs: 20, laneMs: 5_000, minRate: 0.2 };

export interface Lane {
  /** Sends per paced window. Fixed for the lane's lifetime: changing it would break the window bound. */
  r: number;
  until: number;
}

/** The shared state of one system's limiter (the `limiter#<system>` item). */
export interface LimiterState {
  /** Optimistic-concurrency version; 0 while the item does not exist. */
  ver: number;
  /** The controller's current rate (sends/s); absent means the configured rate. */
  rate?: number;
  /** Learnt from the downstream's rate-limit headers (sends/s). */
  learnedRate?: number;
  /** Slots are placed at or after this time. */
  next: number;
  /** The last slot handed out (0: never). */
  lastSlot: number;
  /**
   * The sends the schedule knows of that a later slot may share a window with, oldest first: the shared
   * slots handed out and the sends of lanes given back, whole milliseconds rounded up. A slot is never
   * placed where its window would hold more than the rate with them (absent: none).
   */
  recent?: number[];
  pausedUntil: number;
  lanes: Record<string, Lane>;
  lastDecreaseAt?: number;
  lastIncreaseAt?: number;
  /** The last 429: a second one soon after means the limit really is lower than the pace. */
  lastLimitedAt?: number;
  /**
   * The quiet spell before the next probe above a rate lowered by 429s (`raiseRate`): doubled by each probe
   * that failed, halved by each that held. Absent: PROBE_EVERY_MS.
   */
  probeEveryMs?: number;
  /** Set by the first failed attempt of an outage, cleared by the first success after it. */
  failingSince?: number;
  /**
   * The configured ceiling (`<SYSTEM>_MAX_RPS`) of the container that wrote the item last: what `paybridge
   * limits` shows beside the learnt rate, where the configuration itself is not at hand. Not read by pacing.
   */
  ceiling?: number;
}

export const EMPTY_LIMITER: LimiterState = { ver: 0, next: 0, lastSlot: 0, pausedUntil: 0, lanes: {} };

export const pacedWindow = (s: PacingSettings): number => s.windowMs + s.marginMs;

/**
 * The longest a downstream's word pauses a whole system (Retry-After, "Try again in N", a rate-limit reset):
 * as long as the longest backoff (retry-policy.ts DEFAULT_BACKOFF.capMs). A longer wait is asked again after
 * this, by the next send meeting the limit; taken as stated, `Retry-After: 100000000000000` paused the system
 * for three million years, out of an operator's reach.
 */
export const MAX_PAUSE_MS = 15 * 60_000;

/** How long a 429 pauses sends: the wait it stated (a window when none), at most MAX_PAUSE_MS. */
export const pauseAfter429Ms = (waitMs: number | undefined, s: PacingSettings): number => Math.min(waitMs ?? s.windowMs, MAX_PAUSE_MS);

/** When a rate lowered by 429s may next be raised by a probe: a quiet spell after its last change. */
const probeDueAt = (state: LimiterState): number => Math.max(state.lastIncreaseAt ?? 0, state.lastDecreaseAt ?? 0) + (state.probeEveryMs ?? PROBE_EVERY_MS);

/** The rate to pace to now: the configured ceiling, lowered by the controller and by what the downstream said. */
export function currentRate(state: LimiterState, configured: number): number {
  return Math.min(configured, state.rate ?? configured, state.learnedRate ?? Infinity);
}

/**
 * The rate a reservation made at `now` would pace to: what the status of the limiter shows beside the
 * configured rate (the console's chart), with a probe that is due counted in.
 */
export function pacedRate(state: LimiterState, configured: number, now: number): number {
  return currentRate(raiseRate(state, configured, now), configured);
}

/**
 * What an operator is shown of one system's limiter (`paybridge limits`, the console's `GET
 * /console/api/limits`): times as epoch ms, each field present only where it says something.
 */
export interface LimitStatus {
  /** The configured ceiling (`<SYSTEM>_MAX_RPS`): the caller's, else as the item's last writer had it. */
  configured?: number;
  /** The rate sends are paced to now: the lowest of the ceiling, the learnt rate and a stated limit. */
  pacedNow?: number;
  /** Learnt from 429s (below the ceiling until probing finds the ceiling again). */
  learnt?: number;
  /** Stated by the downstream's RateLimit or X-RateLimit headers. */
  stated?: number;
  /** Nothing is sent before this (a Retry-After or a rate-limit reset). */
  pausedUntil?: number;
  /** The last 429. */
  lastLimitedAt?: number;
  /** When the learnt rate was last lowered. */
  lastDecreaseAt?: number;
  /**
   * When the next probe may raise the learnt rate by one send a second (now or later: taken at the next
   * reservation). Absent where a stated limit at or below the learnt rate paces: a probe would not move the pace.
   */
  nextProbeAt?: number;
  /** The first failed attempt of an outage that has not ended. */
  failingSince?: number;
}

/** The operator's view of `state` at `now` (pure). `configured` undefined: the item's own `ceiling`. */
export function limitStatus(state: LimiterState, configured: number | undefined, now: number): LimitStatus {
  const ceiling = configured ?? state.ceiling;
  const learnt = state.rate !== undefined && (ceiling === undefined || state.rate < ceiling) ? state.rate : undefined;
  const stated = state.learnedRate !== undefined && (ceiling === undefined || state.learnedRate < ceiling) ? state.learnedRate : undefined;
  const pacedNow = ceiling !== undefined ? pacedRate(state, ceiling, now) : learnt !== undefined || stated !== undefined ? Math.min(learnt ?? Infinity, stated ?? Infinity) : undefined;
  return {
    ...(ceiling !== undefined ? { configured: ceiling } : {}),
    ...(pacedNow !== undefined ? { pacedNow } : {}),
    ...(learnt !== undefined ? { learnt, ...(stated === undefined || stated > learnt ? { nextProbeAt: Math.max(now, probeDueAt(state)) } : {}) } : {}),
    ...(stated !== undefined ? { stated } : {}),
    ...(state.pausedUntil > now ? { pausedUntil: state.pausedUntil } : {}),
    ...(state.lastLimitedAt !== undefined ? { lastLimitedAt: state.lastLimitedAt } : {}),
    ...(state.lastDecreaseAt !== undefined ? { lastDecreaseAt: state.lastDecreaseAt } : {}),
    ...(state.failingSince !== undefined ? { failingSince: state.failingSince } : {}),
  };
}

const LIMIT_STATUS_TIMES = ['pausedUntil', 'lastLimitedAt', 'lastDecreaseAt', 'nextProbeAt', 'failingSince'] as const;

/**
 * `status` as the console's API and `paybridge limits --json` give it: rates as numbers, times as ISO strings.
 * A time beyond what a Date holds (a pause an earlier version took as stated) shows as the last one it can.
 */
export function limitStatusJson(status: LimitStatus): Record<string, number | string> {
  const out: Record<string, number | string> = {};
  for (const [k, v] of Object.entries(status) as [keyof LimitStatus, number][]) {
    out[k] = (LIMIT_STATUS_TIMES as readonly string[]).includes(k) ? new Date(Math.max(-8.64e15, Math.min(8.64e15, v))).toISOString() : v;
  }
  return out;
}

function lanesActiveAt(state: LimiterState, t: number, s: PacingSettings): number {
  let sum = 0;
  // A lane's sends count until a whole window after it ends.
  for (const lane of Object.values(state.lanes)) if (t < lane.until + pacedWindow(s)) sum += lane.r;
  return sum;
}

/** Milliseconds between shared slots at time `t`: what the lanes leave of the rate. */
export function slotInterval(state: LimiterState, configured: number, t: number, s: PacingSettings): number {
  const rate = currentRate(state, configured);
  const left = Math.max(rate - lanesActiveAt(state, t, s), Math.min(rate, 1));
  return pacedWindow(s) / Math.max(left, s.minRate);
}

/** How many sends one paced window may hold at `t`: what the lanes leave of the rate, at least one. */
function windowCap(state: LimiterState, configured: number, t: number, s: PacingSettings): number {
  return Math.max(1, Math.floor(currentRate(state, configured) - lanesActiveAt(state, t, s) + 1e-9));
}

/** The known sends that a slot at or after `from` can share a paced window with. */
function liveSends(recent: readonly number[] | undefined, from: number, s: PacingSettings): number[] {
  return (recent ?? []).filter((x) => x > from - pacedWindow(s));
}

/**
 * Whether a send at `t` keeps every paced window that holds it within `cap` sends, beside the sorted
 * known sends `log` (some may lie ahead of `t`: a lane's sends promised before it was given back).
 */
export function fits(log: readonly number[], t: number, cap: number, w: number): boolean {
  let at = 0;
  while (at < log.length && (log[at] as number) <= t) at++;
  const list = [...log.slice(0, at), t, ...log.slice(at)];
  // Every run of cap + 1 consecutive sends that includes this one must span at least a paced window.
  for (let i = Math.max(0, at - cap); i <= at && i + cap < list.length; i++) {
    if ((list[i + cap] as number) - (list[i] as number) < w) return false;
  }
  return true;
}

/**
 * The earliest time at or after `t` where one more send fits beside `log`. A send stops fitting only
 * where a known send comes within a window ahead, and fits again only where one leaves the window
 * behind: so the answer is `t` or a known send plus one window.
 */
function earliestFit(log: readonly number[], t: number, cap: number, w: number): number {
  // The usual case, nothing known ahead of `t`: only the window behind it counts.
  if (log.length === 0 || (log[log.length - 1] as number) <= t) return Math.max(t, (log[log.length - cap] ?? -Infinity) + w);
  if (fits(log, t, cap, w)) return t;
  for (const x of log) if (x + w > t && fits(log, x + w, cap, w)) return x + w;
  return Math.max(t, (log[log.length - 1] ?? t) + w);
}

/**
 * Up to `k` slots at or after `now` (and after any pause), none later than `latest`, and the state
 * that records them. Fewer (possibly none) when the schedule is booked beyond `latest`. Each slot is
 * spaced `slotInterval` after the one before and, with the sends the schedule knows of (`recent`: a
 * lane given back ran at its own pace), never makes a paced window hold more than `windowCap`: so a
 * backlog starting right after a lane's last sends goes at the full rate as soon as their windows allow,
 * not at the rate left beside the lane for a whole window.
 */
export function reserveSlots(
  state: LimiterState,
  configured: number,
  now: number,
  k: number,
  latest: number,
  s: PacingSettings,
  /** Slots handed out before whose sends were never made (late, or paused by a 429): no longer counted. */
  unused: readonly number[] = [],
): { slots: number[]; state: LimiterState } {
  const raised = givenBack(raiseRate(state, configured, now), configured, unused, s);
  const w = pacedWindow(s);
  let log = liveSends(raised.recent, now, s);
  let t = Math.max(raised.next, now, raised.pausedUntil);
  const slots: number[] = [];
  while (slots.length < k) {
    t = earliestFit(log, t, windowCap(raised, configured, t, s), w);
    // `!(t <= latest)`: a rate that is not a number (a corrupt item) hands out nothing.
    if (!(t <= latest) || !Number.isFinite(t)) break;
    slots.push(t);
    const at = Math.ceil(t);
    log = [...log.filter((x) => x > t - w && x <= at), at, ...log.filter((x) => x > at)];
    t += slotInterval(raised, configured, t, s);
  }
  if (slots.length === 0) return { slots, state: raised };
  // The sends of the last two windows are kept, not only what a later slot can share a window with: a 429
  // for a send made up to a round trip ago is measured against the window before that send (`on429`).
  const recent = [...(raised.recent ?? []).filter((x) => x > now - HISTORY_WINDOWS * w), ...slots.map((x) => Math.ceil(x))].sort((a, b) => a - b);
  return { slots, state: { ...raised, next: t, lastSlot: slots[slots.length - 1] as number, recent } };
}

/**
 * After slots were given back: the schedule goes on from the last slot still booked (anyone's: `recent`
 * holds every slot handed out that is still ahead), not from past the ones given back. A 429 that withdrew
 * a burst's permits otherwise left the schedule idle until after all of them (0.6 s in `npm run
 * bench:limit`'s wrong scenario), where the pause it stated was the only wait needed.
 */
function rewound(state: LimiterState, configured: number, unused: readonly number[], s: PacingSettings): LimiterState {
  if (unused.length === 0) return state;
  const last = state.recent && state.recent.length > 0 ? Math.max(...state.recent) : undefined;
  // None still booked: from the earliest slot given back (a time DynamoDB can store, and nothing before it was freed).
  const from = last === undefined ? Math.min(...unused) : last + slotInterval(state, configured, last, s);
  return from < state.next ? { ...state, next: from } : state;
}

/** The state once `unused` (slots handed out and never sent on) are no longer counted, the schedule rewound past them. */
export function givenBack(state: LimiterState, configured: number, unused: readonly number[], s: PacingSettings): LimiterState {
  return rewound(withoutSends(state, unused), configured, unused, s);
}

/** How many paced windows of sends the schedule remembers (`recent`). */
const HISTORY_WINDOWS = 2;

/** The state without the given slots among its known sends (one each): they were handed out but not sent. */
function withoutSends(state: LimiterState, unused: readonly number[]): LimiterState {
  if (unused.length === 0 || !state.recent) return state;
  const recent = [...state.recent];
  for (const slot of unused) {
    const i = recent.indexOf(Math.ceil(slot));
    if (i >= 0) recent.splice(i, 1);
  }
  return { ...state, recent };
}

/**
 * Leases (or renews) `owner`'s intake lane. A new lane starts only when the shared schedule has been
 * quiet for a whole window, and a renewal only while no slot was placed assuming the lane had ended:
 * otherwise the lane's sends and the schedule's could share one window. Returns undefined when no lane
 * can be had now (the caller queues the payment instead).
 */
export function grantLane(
  state: LimiterState,
  configured: number,
  owner: string,
  want: number,
  now: number,
  s: PacingSettings,
): { lane: Lane; state: LimiterState } | undefined {
  const rate = currentRate(state, configured);
  if (rate < 2 || now < state.pausedUntil) return undefined;
  const w = pacedWindow(s);
  const lanes: Record<string, Lane> = {};
  for (const [o, lane] of Object.entries(state.lanes)) if (lane.until + w > now) lanes[o] = lane;
  const mine = lanes[owner];
  const others = Object.entries(lanes).reduce((sum, [o, l]) => (o === owner ? sum : sum + l.r), 0);
  // The shared schedule always keeps at least one send per window for the queued payments.
  const free = Math.floor(rate) - 1 - others;
  if (mine && mine.until > now) {
    if (state.lastSlot > mine.until + w) return undefined;
    // A lane keeps its r for life; once the rate fell below what it takes (429s, a learnt limit), it is
    // not renewed but runs out, so the lanes never hold more than the lowered rate for longer than one lease.
    if (mine.r > free) return undefined;
    const lane = { r: mine.r, until: now + s.laneMs };
    return { lane, state: { ...state, lanes: { ...lanes, [owner]: lane } } };
  }
  if (state.lastSlot > now - w || (state.recent ?? []).some((x) => x > now - w)) return undefined;
  delete lanes[owner];
  if (free < 1) return undefined;
  const lane = { r: Math.max(1, Math.min(Math.floor(want), free)), until: now + s.laneMs };
  return { lane, state: { ...state, lanes: { ...lanes, [owner]: lane } } };
}

/**
 * `owner` gives its lane back before it ends, having sent (or promised) `sends`. The lane stops counting
 * as `r` per window; its sends of the last paced window go into the schedule's `recent` sends instead,
 * so shared slots from now on fill exactly what those sends leave of each window (`reserveSlots`).
 * Counting the lane as `r` until a window after its last send held the shared schedule at part of the
 * rate for up to a window after every release (the start of a backlog's drain). Undefined when there
 * is nothing to change.
 */
export function releaseLane(state: LimiterState, owner: string, sends: readonly number[], now: number, s: PacingSettings): LimiterState | undefined {
  if (!state.lanes[owner]) return undefined;
  const { [owner]: _gone, ...others } = state.lanes;
  const mine = sends.filter((t) => t > now - HISTORY_WINDOWS * pacedWindow(s)).map((t) => Math.ceil(t));
  const recent = [...(state.recent ?? []).filter((x) => x > now - HISTORY_WINDOWS * pacedWindow(s)), ...mine].sort((a, b) => a - b);
  return { ...state, lanes: others, ...(recent.length > 0 ? { recent } : {}) };
}

/**
 * The schedule after the process that booked it is gone (the local stack's boot): every send it made
 * happened before `now`, so sends from `now` plus one paced window can share no window with them. Slots
 * it booked beyond that, and its lanes, are given up; no lane starts within that window either.
 * Returns the state unchanged when nothing was booked beyond it.
 */
export function endPreviousRun(state: LimiterState, now: number, s: PacingSettings): LimiterState {
  const from = now + pacedWindow(s);
  if (state.next <= from && Object.keys(state.lanes).length === 0) return state;
  // A lane's sends are not in the schedule (it only spaced its own slots around them): with the lanes
  // gone, the schedule restarts a whole window on. Otherwise its own spacing still holds up to `from`.
  const lanesLive = Object.values(state.lanes).some((lane) => lane.until + pacedWindow(s) > now);
  const next = lanesLive ? from : Math.min(Math.max(state.next, now), from);
  // Its booked sends after the new start never happened (kept, they would hold new slots back).
  const recent = (state.recent ?? []).filter((x) => x <= next);
  return { ...state, next, lastSlot: Math.max(Math.min(state.lastSlot, from), now), lanes: {}, ...(state.recent ? { recent } : {}) };
}

/** The earliest time at or after `now` that one more send on a lane of `r` per window keeps the window bound. */
export function nextLaneSend(sent: readonly number[], r: number, now: number, s: PacingSettings): number {
  const w = pacedWindow(s);
  let t = now;
  const last = sent[sent.length - 1];
  if (last !== undefined) t = Math.max(t, last + w / r);
  const rth = sent[sent.length - r];
  if (rth !== undefined) t = Math.max(t, rth + w);
  return t;
}

/** Whether a send at `now` may still use the slot at `slot` (it must not leave more than `lateMs` late). */
export function slotUsable(slot: number, now: number, s: PacingSettings): boolean {
  return now <= slot + s.lateMs;
}

/** 429s this close together say the limit is lower than the pace, not that one send arrived late. */
export const REPEATED_429_MS = 10_000;

/** Accepted calls in the window before a lone 429 from which it measures the limit (fewer: only a second 429 does). */
export const MEASURE_FROM = 3;

/** The shortest quiet spell between probes upward (after a multiplicative decrease, which measured nothing). */
export const PROBE_EVERY_MS = 5_000;
/**
 * The first spell after a rate measured from a 429 (`sendsBefore`): that rate is the limit as it was a moment
 * ago, and each probe above a strict window costs a 429 and the wait it states, so probes start rare.
 */
export const PROBE_AFTER_MEASURE_MS = 20_000;
/** Failed probes no longer lengthen the spell beyond this. */
export const PROBE_MAX_MS = 320_000;

/**
 * The sends the schedule knows of in the window before a send that left at `sentAt`: the shared slots
 * (`recent`), and for each live lane its own sends where they are known (`ownLane`: this container's), else
 * its whole `r` (a lane given back is in `recent`). An upper bound on what was accepted there: a slot handed out may have gone unused or been
 * refused. The send's own slot (at most `lateMs` before it left) is not counted.
 */
export function sendsBefore(state: LimiterState, sentAt: number, s: PacingSettings, ownLane?: { owner: string; sends: readonly number[] }): number {
  // Slot times, not arrivals: a slot up to a margin older than the window may have arrived (late) inside it.
  const inWindow = (x: number) => x > sentAt - s.windowMs - s.marginMs && x < sentAt - s.lateMs;
  let n = (state.recent ?? []).filter(inWindow).length;
  for (const [owner, lane] of Object.entries(state.lanes)) {
    if (lane.until + pacedWindow(s) <= sentAt - s.windowMs) continue;
    n += owner === ownLane?.owner ? ownLane.sends.filter(inWindow).length : lane.r;
  }
  return n;
}

/**
 * A 429: a pause until the stated wait, always; and what it teaches about the limit.
 *
 * A strict rolling window (Azure API Management's `rate-limit`) refuses a call only when the window before it
 * already holds the limit's R accepted calls. So when the schedule knows how many sends it made in the window
 * before the refused one (`sentAt`; `sendsBefore`), that count bounds what this client may send per window: at
 * most that many were accepted there, and they were enough to fill it (whatever other clients of the same
 * subscription took is already left out). Below the current rate, the rate drops to that count at once
 * (TCP's fast retransmit rather than its slow halving: the measurement says where the limit is). Paced at R
 * with slots (windowMs + marginMs) / R apart, a window never holds more than R, so the learnt rate is met
 * without further 429s; a count one too high (a slot that went unused) shows itself at the next 429 and
 * is corrected by it.
 *
 * Without a count below the rate (no `sentAt`, or the window held no fewer sends than the rate: one send that
 * arrived late by more than the margin), a lone 429 only pauses; a second within REPEATED_429_MS means the
 * limit is lower than the pace (the downstream is shared, or configured lower): multiplicative decrease,
 * once per window. A 429 for a send that left before the last decrease was paced at the old rate and
 * teaches nothing more. Slots already handed out are not taken back here: senders check the pause before
 * they send (`Pacer.pausedAt`).
 */
export function on429(
  state: LimiterState,
  configured: number,
  now: number,
  waitMs: number | undefined,
  s: PacingSettings,
  sentAt?: number,
  ownLane?: { owner: string; sends: readonly number[] },
  /** This container's sends the downstream accepted (answered other than 429), by the time they left. */
  acceptedHere: readonly number[] = [],
): LimiterState {
  const pausedUntil = Math.max(state.pausedUntil, now + pauseAfter429Ms(waitMs, s));
  // The refused send's own slot (the last known send at most `lateMs` before it left) was no accepted call:
  // kept among the sends, it would make the next 429's count one too high.
  const own = sentAt === undefined ? undefined : (state.recent ?? []).filter((x) => x <= Math.ceil(sentAt) && x >= sentAt - s.lateMs - 1).at(-1);
  const known = own === undefined ? state : withoutSends(state, [own]);
  const base = { ...known, pausedUntil, next: Math.max(state.next, pausedUntil), lastLimitedAt: now };
  if (sentAt !== undefined && state.lastDecreaseAt !== undefined && sentAt <= state.lastDecreaseAt) return base;
  const rate = currentRate(state, configured);
  // A failed probe: the rate was raised since the last decrease (or never lowered) and a 429 came back.
  const probed = state.lastIncreaseAt !== undefined && state.lastIncreaseAt > (state.lastDecreaseAt ?? -Infinity);
  const lowered = (to: number, measured: boolean): LimiterState => {
    const spell = Math.max(measured ? PROBE_AFTER_MEASURE_MS : PROBE_EVERY_MS, probed ? 2 * (state.probeEveryMs ?? PROBE_EVERY_MS) : 0);
    return { ...base, rate: Math.max(s.minRate, to), lastDecreaseAt: now, lastIncreaseAt: now, probeEveryMs: Math.min(PROBE_MAX_MS, spell) };
  };
  const repeated = state.lastLimitedAt !== undefined && now - state.lastLimitedAt < REPEATED_429_MS;
  // Only a refusal by the per-window limit measures it: a wait stated longer than the window is another limit
  // speaking (a quota, an overloaded backend, a fault), and what was accepted before it says nothing of the rate.
  // A lone 429 after a window of one or two calls is more likely a blip than a limit of one or two: it
  // measures only when a second one follows.
  const trusted = (n: number) => n >= 1 && n < rate && (n >= MEASURE_FROM || repeated);
  if (sentAt !== undefined && (waitMs === undefined || waitMs <= s.windowMs)) {
    // What this container saw accepted in that window: a lower bound on what may be sent there, exact where
    // one container makes every send (the local stack; a system with one worker). Preferred: the schedule's
    // count also holds slots handed out but not sent, and sends still unanswered, so on a busy machine it
    // can sit far above the limit.
    const seen = acceptedHere.filter((x) => x > sentAt - s.windowMs - s.marginMs && x < sentAt).length;
    if (trusted(seen)) return lowered(seen, true);
    // As many accepted as the rate (a send late beyond the margin, or one placed at the pace before the last
    // decrease), or a lone blip: the limit is not below the rate, and the 30 % cut below is not for this.
    if (seen > 0) return base;
    // None seen here (another container made those sends): the schedule's count bounds it from above.
    const counted = sendsBefore(known, sentAt, s, ownLane);
    if (trusted(counted)) return lowered(counted, true);
  }
  if (!repeated || (state.lastDecreaseAt !== undefined && now - state.lastDecreaseAt < s.windowMs)) return base;
  return lowered(rate * 0.7, false);
}

/**
 * Probing upward (TCP's additive increase, spaced like BBR's bandwidth probes): one send per second more
 * after a quiet spell without a 429 (`probeEveryMs`), up to the configured ceiling. At a limit that does not
 * move, each probe fails (a 429, which `on429` turns back to the measured rate) and the next spell is twice
 * as long, so probes grow rare; a probe that holds halves the spell, so a limit that rose is found in a few
 * steps.
 */
export function raiseRate(state: LimiterState, configured: number, now: number): LimiterState {
  if (state.rate === undefined) return state;
  if (state.rate >= configured) {
    const { rate: _r, probeEveryMs: _p, ...rest } = state;
    return rest;
  }
  if (now < probeDueAt(state)) return state;
  const every = state.probeEveryMs ?? PROBE_EVERY_MS;
  // The rate before this step held for a whole spell: if it was itself a probe, that probe held.
  const held = state.lastIncreaseAt !== undefined && state.lastIncreaseAt > (state.lastDecreaseAt ?? -Infinity);
  const probeEveryMs = held ? Math.max(PROBE_EVERY_MS, every / 2) : every;
  const rate = Math.floor(state.rate) + 1;
  if (rate >= configured) {
    const { rate: _r, probeEveryMs: _p, ...ceiling } = state;
    return { ...ceiling, lastIncreaseAt: now };
  }
  return { ...state, rate, lastIncreaseAt: now, probeEveryMs };
}

/** What the downstream's rate-limit headers teach: a lower rate to pace to, and a pause when none are left. */
export function learn(state: LimiterState, configured: number, info: { limit?: number; windowMs?: number; remaining?: number; resetMs?: number }, now: number): LimiterState {
  let next = state;
  if (info.limit !== undefined && info.windowMs !== undefined && info.windowMs > 0) {
    const rate = (info.limit * 1000) / info.windowMs;
    if (rate < configured && rate !== state.learnedRate) next = { ...next, learnedRate: rate };
  }
  if (info.remaining === 0 && info.resetMs !== undefined && info.resetMs > 0) {
    const until = now + Math.min(info.resetMs, MAX_PAUSE_MS);
    if (until > next.pausedUntil) next = { ...next, pausedUntil: until, next: Math.max(next.next, until) };
  }
  return next;
}

type HeaderBag = Record<string, string | string[] | undefined>;

function header(headers: HeaderBag, name: string): string | undefined {
  const v = headers[name] ?? headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

function num(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text.trim());
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

/**
 * Reads the common rate-limit header families: the IETF draft's `RateLimit-Policy: 10;w=1` /
 * `RateLimit-Limit` / `-Remaining` / `-Reset` (seconds), the combined `RateLimit: limit=10,
 * remaining=0, reset=1`, and the older `X-RateLimit-*` (a reset over 10^9 is an epoch time).
 */
export function rateInfoFrom(raw: HeaderBag, now: number): { limit?: number; windowMs?: number; remaining?: number; resetMs?: number } | undefined {
  const headers: HeaderBag = {};
  for (const [k, v] of Object.entries(raw)) headers[k.toLowerCase()] = v;
  const out: { limit?: number; windowMs?: number; remaining?: number; resetMs?: number } = {};
  const policy = header(headers, 'ratelimit-policy');
  if (policy) {
    const m = /^\s*(\d+)\s*;\s*w\s*=\s*(\d+)/.exec(policy);
    if (m) {
      out.limit = Number(m[1]);
      out.windowMs = Number(m[2]) * 1000;
    }
  }
  const combined = header(headers, 'ratelimit');
  if (combined) {
    for (const part of combined.split(',')) {
      const [k, v] = part.split('=').map((x) => x.trim().toLowerCase());
      const n = num(v);
      if (n === undefined) continue;
      if (k === 'limit') out.limit ??= n;
      if (k === 'remaining') out.remaining = n;
      if (k === 'reset') out.resetMs = n * 1000;
    }
  }
  for (const prefix of ['ratelimit-', 'x-ratelimit-']) {
    const limit = num(header(headers, `${prefix}limit`));
    const remaining = num(header(headers, `${prefix}remaining`));
    const reset = num(header(headers, `${prefix}reset`));
    if (limit !== undefined) out.limit ??= limit;
    if (remaining !== undefined) out.remaining ??= remaining;
    if (reset !== undefined) out.resetMs ??= reset > 1e9 ? Math.max(0, reset * 1000 - now) : reset * 1000;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}
