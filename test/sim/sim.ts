import type { EngineDeps } from '../../shared/core/context.js';
import pLimit from 'p-limit';
import { QUEUED_TURN_MS, submit, upsert, type IntakeIds } from '../../shared/core/intake.js';
import { DEFAULT_SETTINGS, type EngineSettings } from '../../shared/core/lifecycle.js';
import { redrive, repost, resolveNotPosted, resolvePosted, type OperatorDeps } from '../../shared/core/operator.js';
import { sweep } from '../../shared/core/recovery.js';
import { ACTIVE_STATUSES, recordPk, type PaymentRecord } from '../../shared/core/types.js';
import { handleBatch } from '../../shared/core/worker.js';
import type { Logger } from '../../shared/log.js';
import type { Metrics } from '../../shared/metrics.js';
import type { SystemModule } from '../../shared/systems/types.js';
import { SimLimiter } from './pacer.js';
import { NO_QUEUE_FAULTS, SIM_MESSAGE_KEYS, SimQueue } from './queue.js';
import { checkpointOnly, NO_STORE_FAULTS, SimStore, short, type Writer } from './store.js';
import { Downstream, NO_CALL_FAULTS, SIM_SYSTEMS, simModules, type Effect, type SimRequest, type SimSystem } from './systems.js';
import { simulateEvents, type EventCounts } from './outbox.js';
import { Container, SIM_EPOCH, World } from './world.js';

/**
 * The deterministic simulation of the whole engine (issue 19; docs/simulation.md). One seed decides a
 * scenario (payments, callers, faults, crashes, operator actions) and every choice the scheduler makes;
 * the engine runs its real entry points (submit, upsert, handleBatch, sweep, the operator actions)
 * against simulated ports, and the invariants are checked as the state changes and at the end.
 */

/** Scenario features that only some engines survive: each is one of issue 19's defects 1-6. */
export const FEATURES = [
  /** Defect 1: an operator redrives or reposts a held payment whose revision had an ambiguous send. */
  'redriveAfterAmbiguous',
  /** Defect 2: a caller's corrected body (or an operator's repost) for a held payment that may have reached the downstream. */
  'revisionAfterReceipt',
  /** Defect 3: an operator reposts a Kontantanalys object that has a remote id (or whose create may have happened). */
  'repostKontantanalys',
  /** Defect 4: reads lag behind writes (up to the reconcile delay), so a reconcile made early may miss a stored payment. */
  'wakeBeforeReconcileDelay',
  /** Defect 5: a caller's older body arrives late, after a newer one was accepted. */
  'staleRedelivery',
  /** Defect 6: store faults (lost replies, the SDK's retry against itself) also hit checkpoint writes and fence consumes. */
  'lostCheckpointReply',
] as const;
export type Feature = (typeof FEATURES)[number];

/**
 * The features today's engine fails: a default run (and `npm test`) leaves them out, `--enable <feature>`
 * (or `enable` in the options) puts one back. Once the engine is fixed, take the feature off this list:
 * every run then includes it.
 */
export const KNOWN_DEFECTS: readonly Feature[] = [];

export interface SimOptions {
  payments: number;
  /** Features to include although they are KNOWN_DEFECTS (those not on that list are always included). */
  enable: ReadonlySet<Feature>;
  trace: boolean;
  /** Steps before a seed counts as a livelock. */
  maxSteps: number;
  /** Microtask turns after each step (0: a full macrotask turn). See World.run. */
  ticks: number;
  /** Test hook: a broken module, to show the invariants can fail (test/sim/sim.test.ts). */
  breakModule?: (system: string, module: SystemModule) => SystemModule;
  /** Test hooks: a broken outbox stamp or relay (test/sim/sim.test.ts). */
  breakEvents?: { stamp?: SimStore['stamp']; relay?: Parameters<typeof simulateEvents>[0]['relay'] };
}

export const DEFAULT_SIM: SimOptions = { payments: 20, enable: new Set(), trace: false, maxSteps: 200_000, ticks: 6 };

export interface Violation {
  invariant: string;
  at: number;
  detail: string;
}

export interface SeedResult {
  seed: number;
  violations: Violation[];
  lines?: string[];
  steps: number;
  simulatedMs: number;
  statuses: Record<string, number>;
  /** What the events-out part of the run did (test/sim/outbox.ts: EventCounts). */
  events?: EventCounts;
  /** Queued claims' turns (EngineDeps.queuedClaims): taken, and given on by a write slower than QUEUED_TURN_MS. */
  turns?: { taken: number; givenOn: number };
}

/** The stated bound of clock skew between containers (each container's clock is off by up to this). */
export const MAX_SKEW_MS = 500;
/** Faults, callers and operators act until this time; then the quiet phase lets everything settle. */
const ACTIVE_MS = 60 * 60_000;
const SETTINGS: EngineSettings = { ...DEFAULT_SETTINGS, budgetMs: 60 * 60_000 };
/** After the active phase: faults off, sweeps every five minutes, until every budget has run out twice over. */
const END_MS = ACTIVE_MS + 2 * SETTINGS.budgetMs + 30 * 60_000;

const silent: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined, child: () => silent };
const noMetrics: Metrics = { count: () => undefined, milliseconds: () => undefined, seconds: () => undefined };

/** Statuses a payment may end in; each of them but posted needs a reason. */
const SETTLED = new Set(['posted', 'failed', 'held', 'unknown']);
/**
 * Effects that are a payment (or a created object): two for one key is a double posting. Cambio's notice
 * is a state. BRP: two receipts, or two orders for the same body (an order a refused sale left open is
 * not a payment, and a corrected sale makes a new one).
 */
const ONCE: ReadonlySet<Effect['kind']> = new Set(['row', 'order', 'receipt', 'object']);

/** History events that say the current revision may have reached the downstream. */
const REACHED = new Set(['ambiguous', 'stranded', 'reconciled', 'reconcile_inconclusive', 'unknown']);
const REVISION_START = new Set(['received', 'revised', 'reposted', 'changed']);

/** Whether the record's current revision may have reached its downstream (a scenario filter for KNOWN_DEFECTS). */
export function mayHaveReached(record: PaymentRecord): boolean {
  for (let i = record.history.length - 1; i >= 0; i--) {
    const e = record.history[i]?.event ?? '';
    if (REACHED.has(e)) return true;
    if (REVISION_START.has(e)) break;
  }
  const cp = record.checkpoints as Record<string, unknown>;
  return cp.orderRequested === true || cp.orderId !== undefined || cp.receiptRequested === true || cp.remoteId !== undefined || cp.createRequested === true;
}

interface Payment {
  system: SimSystem;
  key: string;
  pk: string;
  caller: string;
  /** Body versions the caller sent, by v. */
  bodies: Map<number, SimRequest>;
  /** The newest body version the owner has sent. */
  sentMax: number;
}

export async function runSeed(seed: number, options: Partial<SimOptions> = {}): Promise<SeedResult> {
  const opts = { ...DEFAULT_SIM, ...options };
  const on = (f: Feature) => opts.enable.has(f) || !KNOWN_DEFECTS.includes(f);
  const world = new World(seed, opts.trace);
  const rng = world.rng;
  const violations: Violation[] = [];
  const violate = (invariant: string, detail: string) => {
    violations.push({ invariant, at: world.now, detail });
    world.log('CHECK', () => `VIOLATION ${invariant}: ${detail}`);
  };

  // --- the ports -----------------------------------------------------------------------------------
  const store = new SimStore(world, SETTINGS.indexShards);
  if (opts.breakEvents?.stamp) store.stamp = opts.breakEvents.stamp;
  const queue = new SimQueue(world);
  const limiter = new SimLimiter(world);
  const downstreams = new Map<SimSystem, Downstream>(SIM_SYSTEMS.map((s) => [s, new Downstream(s, world, SETTINGS.attemptTimeoutMs)]));
  let crashes = 0;

  // Per seed, how rough the run is: some seeds are calm, some stormy.
  const storm = rng.next();
  const p = (x: number) => x * storm;
  const storeFaults = { errorBefore: p(0.02), lostReply: p(0.02), sdkRetryEcho: p(0.02), onCheckpoints: on('lostCheckpointReply') };
  const queueFaults = { sendError: p(0.02), lostReply: p(0.02), duplicate: p(0.05), redeliver: p(0.05), lateMs: Math.round(p(20_000)) };
  store.faults = storeFaults;
  queue.faults = queueFaults;
  for (const ds of downstreams.values()) {
    ds.faults = {
      rateLimited: p(0.1),
      unauthorized: p(0.02),
      ambiguousAfter: p(0.08),
      ambiguousBefore: p(0.04),
      refused: p(0.05),
      hang: p(0.02),
      readError: p(0.1),
    };
    // Lagging reads only with the scenario feature: within the reconcile delay, as the engine assumes.
    if (on('wakeBeforeReconcileDelay') && rng.chance(0.7)) ds.lagMs = rng.int(1_000, SETTINGS.reconcileDelayMs - 500);
    // Windows of broken configuration or refused credentials, all over before the quiet phase.
    if (rng.chance(0.3 * storm)) {
      const from = rng.int(0, ACTIVE_MS - 20 * 60_000);
      ds.configBroken.push({ from, to: from + rng.int(60_000, 15 * 60_000) });
    }
    if (rng.chance(0.3 * storm)) {
      const from = rng.int(0, ACTIVE_MS - 20 * 60_000);
      ds.authBroken.push({ from, to: from + rng.int(60_000, 15 * 60_000) });
    }
    // Blips: a configuration being rotated, a token endpoint refusing for a moment (seconds to a minute).
    // With redriveAfterAmbiguous or revisionAfterReceipt they come often: defects 1 and 2 need one to start within a reconcile delay of an ambiguous send.
    for (let b = rng.int(0, Math.round((on('redriveAfterAmbiguous') || on('revisionAfterReceipt') ? 24 : 6) * storm)); b > 0; b--) {
      const from = rng.int(0, ACTIVE_MS - 5 * 60_000);
      (rng.chance(0.5) ? ds.configBroken : ds.authBroken).push({ from, to: from + rng.int(5_000, 60_000) });
    }
    for (const w of [...ds.configBroken, ...ds.authBroken]) {
      w.from += SIM_EPOCH;
      w.to += SIM_EPOCH;
    }
  }

  // --- invariants checked as the state changes -------------------------------------------------------
  const payments = new Map<string, Payment>();
  /** Keys an operator asserted absent (`resolve --not-posted`): a second posting is theirs to answer for. */
  const assertedAbsent = new Set<string>();
  /** The newest body version accepted per key (written into its record), and when. */
  const accepted = new Map<string, { v: number; at: number }>();
  const acceptedVs = new Map<string, Set<number>>();
  const accept = (pay: Payment, v: number) => {
    const id = `${pay.system}:${pay.key}`;
    const cur = accepted.get(id);
    // A register kept in step (Kontantanalys' PUT) takes the whole desired state each time: the body it
    // accepted last is the newest, even an earlier one sent again (a revert). A payment's newest is its
    // highest revision: an earlier body sent again must never become it (issue 19, defect 5).
    if (!cur || v > cur.v || pay.system === 'kontantanalys') accepted.set(id, { v, at: world.now });
    const set = acceptedVs.get(id) ?? new Set<number>();
    set.add(v);
    acceptedVs.set(id, set);
  };

  for (const ds of downstreams.values()) {
    const record = ds.record.bind(ds);
    ds.record = (kind, key, v) => {
      const e = record(kind, key, v);
      const id = `${ds.system}:${key}`;
      if (ONCE.has(kind) && !assertedAbsent.has(id)) {
        // An order left open by a refused sale is not a payment: a second order counts only for the same body.
        const same = ds.effects.filter((x) => x.kind === kind && x.key === key && (kind !== 'order' || x.v === v));
        if (same.length > 1) violate('posted-twice', `${ds.system} holds ${same.length} ${kind}s for ${key}: #${same.map((x) => x.id).join(', #')} (bodies v${same.map((x) => x.v).join(', v')})`);
      }
      if (kind !== 'order') {
        const newest = accepted.get(id);
        if (newest && v < newest.v) violate('stale-revision-posted', `${ds.system} got body v${v} of ${key} after v${newest.v} was accepted`);
        if (!acceptedVs.get(id)?.has(v)) violate('unaccepted-body-posted', `${ds.system} got body v${v} of ${key}, which was never accepted`);
      }
      return e;
    };
  }

  store.observers.push((pk, before, after, writer) => {
    // A body is accepted when a write puts it in the record (the claim, a revision, a changed version).
    if (after.payloadHash !== before?.payloadHash) {
      const pay = payments.get(pk);
      if (pay) accept(pay, (after.request as unknown as SimRequest).v);
    }
    world.log(writer.actor, () => `write ${short(pk)} ${after.status} v${after.version} r${after.revision} (${before && checkpointOnly(before, after) ? `checkpoint ${JSON.stringify(after.checkpoints)}` : after.history[after.history.length - 1]?.event})`);
    if (before && after.version !== before.version + 1) violate('version-skipped', `${short(pk)} went from v${before.version} to v${after.version}`);
    if (before?.caller !== undefined && after.caller !== before.caller) violate('owner-changed', `${short(pk)} belonged to ${before.caller}, now to ${after.caller}`);
    if (before?.caller !== undefined && writer.caller !== undefined && writer.caller !== before.caller) {
      violate('foreign-write', `${writer.caller} changed ${short(pk)}, which belongs to ${before.caller}`);
    }
  });

  // --- containers and their engine deps -----------------------------------------------------------------
  const skewOf = new Map<Container, number>();
  const modulesOf = new Map<Container, Map<string, SystemModule>>();
  const modules = (c: Container) => {
    let m = modulesOf.get(c);
    if (!m) {
      m = simModules(world, downstreams, c);
      if (opts.breakModule) for (const [name, mod] of m) m.set(name, opts.breakModule(name, mod));
      modulesOf.set(c, m);
    }
    return m;
  };
  const newContainer = (name: string) => {
    const c = new Container(name);
    skewOf.set(c, rng.int(-MAX_SKEW_MS, MAX_SKEW_MS));
    return c;
  };
  const engineDeps = new Map<Container, EngineDeps>();
  /** An engine actor's deps (worker, sweeper): one per container. */
  const actorDeps = (c: Container): EngineDeps => {
    let d = engineDeps.get(c);
    if (!d) {
      d = depsFor(c, { actor: c.name });
      engineDeps.set(c, d);
    }
    return d;
  };
  const pacers = new Map<Container, EngineDeps['pacer']>();
  /**
   * Each container's turns for queued claims (EngineDeps.queuedClaims), as shared/deps.ts makes them:
   * p-limit, promises only, so a seed replays. Counted: turns taken, and turns given on by a write not
   * answered within QUEUED_TURN_MS (the store's slow writes). A turn held longer than that is a violation:
   * a claim write that hangs would hold every payment the container queues after it.
   */
  const turns = { taken: 0, givenOn: 0 };
  const turnsOf = new Map<Container, NonNullable<EngineDeps['queuedClaims']>>();
  const queuedClaims = (c: Container): NonNullable<EngineDeps['queuedClaims']> => {
    let t = turnsOf.get(c);
    if (!t) {
      const gate = pLimit(Math.max(1, SETTINGS.queuedClaimsAtOnce));
      t = {
        inline: 0,
        turn: (write) =>
          gate(async () => {
            turns.taken++;
            const started = world.now;
            try {
              return await write();
            } finally {
              const held = world.now - started;
              if (held >= QUEUED_TURN_MS) turns.givenOn++;
              if (held > QUEUED_TURN_MS) violate('turn-held', `${c.name}: a queued claim held its turn ${held} ms (at most ${QUEUED_TURN_MS})`);
            }
          }),
      };
      turnsOf.set(c, t);
    }
    return t;
  };
  const depsFor = (c: Container, writer: Writer): EngineDeps => {
    const skew = skewOf.get(c) ?? 0;
    const mods = modules(c);
    const clock = () => world.now + skew;
    const view = store.view(c, writer, clock);
    return {
      store: view,
      fences: view,
      queue: queue.view(c, writer.actor),
      pacer: pacers.get(c) ?? (pacers.set(c, limiter.pacer(c, clock)).get(c) as EngineDeps['pacer']),
      systems: (name) => mods.get(name),
      settings: SETTINGS,
      log: silent,
      metrics: noMetrics,
      clock,
      random: rng.next,
      sleep: (ms) => world.sleep(c, ms),
      queuedClaims: queuedClaims(c),
      stopping: c.controller.signal,
      messageKeys: SIM_MESSAGE_KEYS,
    };
  };
  const onError = (actor: string) => (err: unknown) => world.log(actor, () => `threw: ${(err as Error).message}`);

  // Two API containers, two workers, one sweeper: any of them may crash and be replaced.
  const roles = { api: [newContainer('api-1'), newContainer('api-2')], worker: [newContainer('worker-1'), newContainer('worker-2')], sweep: [newContainer('sweeper')] };
  const operatorBox = newContainer('operator');
  let requests = 0;
  let quiet = false;

  // --- workers: one loop per worker container and system, woken when a message becomes visible ----------
  const workerLoop = (c: Container, system: SimSystem) => async () => {
    for (let polls = 0; polls < 100_000 && !c.dead; polls++) {
      const at = queue.nextVisible(system);
      if (at === undefined) await queue.arrival(c, system);
      else await world.sleep(c, Math.max(0, at - world.now) + rng.int(0, 300));
      const batch = await queue.receive(c, system, 10);
      if (batch.length === 0) continue;
      const deps = actorDeps(c);
      let failed: ReadonlySet<string>;
      try {
        const r = await handleBatch(deps, system, batch.map((m) => ({ id: m.id, body: m.body })), deps.clock() + 60_000);
        failed = new Set(r.failed);
        world.log(c.name, () => `batch ${system} x${batch.length}: ${Object.entries(r.counts).map(([k, n]) => `${k}=${n}`).join(' ')}${r.failed.length ? ` failed=${r.failed.length}` : ''}`);
      } catch (err) {
        world.log(c.name, () => `batch ${system} x${batch.length} threw: ${(err as Error).message}`);
        failed = new Set(batch.map((m) => m.id));
      }
      await queue.finish(c, system, batch, failed);
    }
  };
  const startWorker = (c: Container) => {
    for (const s of SIM_SYSTEMS) world.spawn(c, world.now, workerLoop(c, s), onError(c.name));
  };
  const startSweeper = (c: Container) => {
    world.spawn(
      c,
      world.now,
      async () => {
        for (let i = 0; i < 10_000 && !c.dead; i++) {
          // Every one to four minutes while faults happen (a schedule that may run late; its grace is 30 s), every five in the quiet phase.
          await world.sleep(c, quiet ? 300_000 : rng.int(60_000, 240_000));
          const r = await sweep(actorDeps(c), SIM_SYSTEMS);
          if (r.enqueued + r.stranded + r.probed > 0) world.log(c.name, () => `sweep: enqueued=${r.enqueued} stranded=${r.stranded} probed=${r.probed}`);
          if (world.now >= SIM_EPOCH + END_MS) return;
          // The quiet phase ends early once nothing is active and nothing is queued: no step could change anything.
          if (quiet && queue.size() === 0 && [...store.records.values()].every((r) => !ACTIVE_STATUSES.includes(r.status))) {
            world.log(c.name, () => 'everything settled: the run ends');
            world.stop();
            return;
          }
        }
      },
      onError(c.name),
    );
  };
  for (const c of roles.worker) startWorker(c);
  for (const c of roles.sweep) startSweeper(c);

  // --- crashes: a container dies with everything in flight; a fresh one takes its place --------------
  const nCrashes = rng.chance(0.5) ? rng.int(1, 3) : 0;
  for (let i = 0; i < nCrashes; i++) {
    world.spawn(
      undefined,
      SIM_EPOCH + rng.int(0, ACTIVE_MS),
      async () => {
        if (quiet) return;
        const role = rng.pick(['api', 'worker', 'sweep'] as const);
        const list = roles[role];
        const idx = rng.int(0, list.length - 1);
        const old = list[idx] as Container;
        old.dead = true;
        old.controller.abort(new Error('simulated crash'));
        crashes++;
        const fresh = newContainer(`${old.name.split("'")[0]}'${crashes}`);
        list[idx] = fresh;
        world.log('CRASH', () => `${old.name} died with its work in flight; ${fresh.name} starts`);
        if (role === 'worker') startWorker(fresh);
        if (role === 'sweep') startSweeper(fresh);
      },
      onError('crash'),
    );
  }

  // --- callers -------------------------------------------------------------------------------------
  const callers = ['pos-a', 'pos-b', 'pos-c'];
  /** One request through the route as the HTTP handler makes it: retried by the caller on a 5xx. */
  const deliver = async (pay: Payment, v: number, caller: string, tries = 0): Promise<string> => {
    const body = pay.bodies.get(v) as SimRequest;
    if (caller === pay.caller) pay.sentMax = Math.max(pay.sentMax, v);
    const c = rng.pick(roles.api);
    const n = ++requests;
    const deps = depsFor(c, { actor: c.name, caller });
    const module = deps.systems(pay.system) as SystemModule;
    const parsed = module.parse({ body, headers: {} });
    // Most requests leave the route time to send in-process; some come with too little (queued).
    const ids: IntakeIds = { owner: `req-${n}`, correlationId: `c-${n}`, caller, ...(rng.chance(0.8) ? { deadline: deps.clock() + 25_000 } : {}) };
    world.log(caller, () => `${pay.system === 'kontantanalys' ? 'PUT' : 'POST'} ${pay.key} body v${v} (via ${c.name})`);
    let kind: string;
    try {
      if (pay.system === 'kontantanalys') {
        // The route refuses another caller's object before upsert (shared/http/kontantanalys.ts).
        const existing = await deps.store.get(pay.pk);
        if (existing?.caller !== undefined && existing.caller !== caller) kind = 'foreign';
        else kind = (await upsert(deps, module, parsed, ids)).kind;
      } else {
        kind = (await submit(deps, module, parsed, ids)).kind;
      }
    } catch (err) {
      world.log(caller, () => `${pay.key} v${v}: 5xx (${(err as Error).message})`);
      // The caller tries again, unless it has sent a newer body meanwhile (that retry would be a stale redelivery).
      if (tries >= 2 || c.dead || (pay.sentMax > v && !on('staleRedelivery'))) return 'error';
      await world.sleep(undefined, rng.int(1_000, 10_000));
      return deliver(pay, v, caller, tries + 1);
    }
    world.log(caller, () => `${pay.key} v${v}: ${kind}`);
    return kind;
  };
  /** A delivery that a busy or conflicting answer sends back a few times, as an integrator's retry would. */
  const persist = async (pay: Payment, v: number, caller: string) => {
    for (let i = 0; i < 3; i++) {
      const kind = await deliver(pay, v, caller);
      if (kind !== 'conflict' && kind !== 'busy' && kind !== 'error') return;
      await world.sleep(undefined, rng.int(2, 15) * 60_000);
      if (quiet) return;
    }
  };
  const at = (ms: number, task: () => Promise<void>, actor: string) => world.spawn(undefined, SIM_EPOCH + ms, task, onError(actor));

  const bursts = Array.from({ length: rng.int(1, 4) }, () => rng.int(0, 10 * 60_000));
  for (let i = 0; i < opts.payments; i++) {
    const system = rng.pick(SIM_SYSTEMS);
    const key = `k${i}`;
    const pay: Payment = { system, key, pk: recordPk(system, 'default', key), caller: rng.pick(callers), bodies: new Map(), sentMax: 0 };
    payments.set(pay.pk, pay);
    const resource = system === 'kontantanalys' ? rng.pick(['services', 'templates'] as const) : undefined;
    const body = (v: number, valid: boolean): SimRequest => ({ key, v, amount: 1000 * (i + 1) + v, valid, ...(resource ? { resource } : {}) });
    const valid = !rng.chance(0.15);
    pay.bodies.set(1, body(1, valid));
    // Payments come in bursts (a till closing, a batch of webhooks): a few seconds apart within one.
    const t0 = (bursts[rng.int(0, bursts.length - 1)] as number) + rng.int(0, 20_000);
    const corrected = !valid || rng.chance(0.15);
    const t2 = t0 + rng.int(60_000, 30 * 60_000);
    at(t0, () => deliver(pay, 1, pay.caller).then(() => undefined), pay.caller);
    // The same delivery again (a webhook retry, a POS that did not hear the answer); before any newer
    // body, unless the scenario has stale redeliveries.
    if (rng.chance(0.3)) at(t0 + rng.int(0, Math.min(5 * 60_000, corrected ? t2 - t0 - 30_000 : Infinity)), () => deliver(pay, 1, pay.caller).then(() => undefined), pay.caller);
    // A corrected body: always after a refusal, sometimes otherwise (then it is a conflict unless held or failed).
    if (corrected) {
      pay.bodies.set(2, body(2, true));
      at(
        t2,
        async () => {
          const current = store.records.get(pay.pk);
          // Defect 2's scenario, left out unless enabled: a new revision of a payment that may have reached its downstream.
          if (current && current.status === 'held' && mayHaveReached(current) && !on('revisionAfterReceipt')) return;
          await persist(pay, 2, pay.caller);
          // Defect 5's scenario: the older body delivered late, after the newer one.
          if (on('staleRedelivery') && rng.chance(0.7)) {
            await world.sleep(undefined, rng.int(1_000, 10 * 60_000));
            if (!quiet) await deliver(pay, 1, pay.caller);
          }
        },
        pay.caller,
      );
    }
    // Another caller tries the same key: refused, and nothing of the owner's may change.
    if (rng.chance(0.1)) {
      const other = rng.pick(callers.filter((c) => c !== pay.caller));
      pay.bodies.set(9, body(9, true));
      at(t0 + rng.int(-60_000, 20 * 60_000), () => deliver(pay, 9, other).then(() => undefined), other);
    }
  }

  // --- the operator: acts on held and unknown payments at random moments --------------------------------
  const opDeps: OperatorDeps = {
    store: store.view(operatorBox, { actor: 'operator' }),
    queue: queue.view(operatorBox, 'operator'),
    clock: () => world.now,
    fence: () => limiter.fence('operator'),
  };
  /** What the operator finds when checking the downstream by hand (its write side: the truth). */
  const presentDownstream = (pay: Payment): boolean => {
    const ds = downstreams.get(pay.system) as Downstream;
    const kind = pay.system === 'brp' ? 'receipt' : pay.system === 'kontantanalys' ? 'object' : pay.system === 'cambio' ? 'notice' : 'row';
    return ds.effects.some((e) => e.kind === kind && e.key === pay.key);
  };
  const operatorRound = async () => {
    for (const pay of payments.values()) {
      const r = store.records.get(pay.pk);
      if (!r || (r.status !== 'held' && r.status !== 'unknown')) continue;
      if (!rng.chance(0.5)) continue;
      let done: { ok: boolean; reason?: string };
      let action: string;
      if (r.status === 'unknown') {
        if (presentDownstream(pay)) {
          action = 'resolve --posted';
          done = await resolvePosted(opDeps, pay.pk, 'sim-operator', 'found downstream');
        } else {
          action = 'resolve --not-posted';
          assertedAbsent.add(`${pay.system}:${pay.key}`);
          done = await resolveNotPosted(opDeps, pay.pk, 'sim-operator', 'not found downstream');
          if (done.ok && rng.chance(0.5)) {
            action += ', repost';
            done = await repost(opDeps, pay.pk, 'sim-operator', 'not found downstream');
          }
        }
      } else {
        const reached = mayHaveReached(r);
        const wantRepost = rng.chance(0.3);
        // Defects 1-3's scenarios are left out unless enabled.
        if (reached && pay.system !== 'brp' && pay.system !== 'kontantanalys' && !on('redriveAfterAmbiguous')) continue;
        if (wantRepost && reached && pay.system === 'brp' && !on('revisionAfterReceipt')) continue;
        if (wantRepost && pay.system === 'kontantanalys' && reached && !on('repostKontantanalys')) continue;
        action = wantRepost ? 'repost' : 'redrive';
        done = wantRepost ? await repost(opDeps, pay.pk, 'sim-operator', 'the cause was fixed') : await redrive(opDeps, pay.pk, 'sim-operator');
      }
      world.log('operator', () => `${action} ${short(pay.pk)}: ${done.ok ? 'done' : `refused (${done.reason})`}`);
    }
  };
  for (let t = rng.int(5, 15) * 60_000; t < ACTIVE_MS; t += rng.int(5, 20) * 60_000) {
    at(t, () => operatorRound().catch((err: unknown) => world.log('operator', () => `threw: ${(err as Error).message}`)), 'operator');
  }
  // The quiet phase: faults end, so whatever is still active must settle by itself.
  at(
    ACTIVE_MS,
    async () => {
      quiet = true;
      store.faults = NO_STORE_FAULTS;
      queue.faults = NO_QUEUE_FAULTS;
      for (const ds of downstreams.values()) ds.faults = NO_CALL_FAULTS;
      world.log('sim', () => 'quiet phase: faults off');
    },
    'sim',
  );

  const eventsOut = simulateEvents({ seed, world, store, violate, quiet: () => quiet, storm, activeMs: ACTIVE_MS, onError, ...(opts.breakEvents?.relay ? { relay: opts.breakEvents.relay } : {}) });

  const finished = await world.run(SIM_EPOCH + END_MS, () => undefined, opts.maxSteps, opts.ticks);
  if (!finished) violate('livelock', `more than ${opts.maxSteps} steps`);

  // --- invariants at the end -------------------------------------------------------------------------
  const statuses: Record<string, number> = {};
  for (const pay of payments.values()) {
    const r = store.records.get(pay.pk);
    const id = `${pay.system}:${pay.key}`;
    if (!r) {
      if (accepted.has(id)) violate('lost', `${short(pay.pk)} was accepted but has no record`);
      continue;
    }
    statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    if (ACTIVE_STATUSES.includes(r.status)) {
      const inBudget = world.now - r.budgetFrom < SETTINGS.budgetMs;
      const scheduled = r.nextAttemptAt !== undefined && r.dueShard !== undefined && r.nextAttemptAt > world.now - 10 * 60_000;
      if (!inBudget || !scheduled) violate('stuck', `${short(pay.pk)} is still ${r.status} v${r.version} (next attempt ${r.nextAttemptAt === undefined ? 'none' : `${Math.round((r.nextAttemptAt - world.now) / 1000)} s from now`}, budget ${inBudget ? 'left' : 'spent'})`);
    } else if (!SETTLED.has(r.status)) violate('bad-status', `${short(pay.pk)} is ${r.status}`);
    else if (r.status !== 'posted' && !r.error?.message) violate('silent', `${short(pay.pk)} is ${r.status} without a reason`);
    if (r.status === 'posted' && r.result?.httpStatus !== 0 && !presentDownstream(pay) && !(pay.system === 'kontantanalys' && (downstreams.get('kontantanalys') as Downstream).effects.some((e) => e.key === pay.key))) {
      violate('phantom-posted', `${short(pay.pk)} is posted but ${pay.system} holds nothing of it`);
    }
    // An unknown is for a payment that may have arrived: one whose downstream never saw a request is a
    // needless alarm (crashes aside: the engine accepts that a crash between claim and send parks it).
    if (r.status === 'unknown' && crashes === 0 && !(downstreams.get(pay.system) as Downstream).touched.has(pay.key)) {
      violate('needless-unknown', `${short(pay.pk)} is unknown but ${pay.system} never received a request for it`);
    }
  }
  // Events out, after the engine's checks (this moves the clock on): every container stops, what was on
  // the wire lands, a last relay pass runs with no faults, then the events' invariants are checked.
  for (const list of Object.values(roles)) for (const c of list) c.dead = true;
  operatorBox.dead = true;
  if (finished) await eventsOut.finish(opts.maxSteps);
  return { seed, violations, ...(world.lines ? { lines: world.lines } : {}), steps: world.steps, simulatedMs: world.now - SIM_EPOCH, statuses, events: eventsOut.counts, turns };
}
