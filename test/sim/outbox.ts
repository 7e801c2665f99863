import type { PaymentRecord } from '../../shared/core/types.js';
import { eventId, type LastEvent, type OutboxRecord } from '../../shared/events/model.js';
import { EventRelay, recordsPointedAt, wants, type PendingPointer, type RelayStore } from '../../shared/events/relay.js';
import type { Endpoint } from '../../shared/events/store.js';
import type { Logger } from '../../shared/log.js';
import { seededRandom } from '../../shared/systems/sandbox.js';
import { SimEventStore } from './events.js';
import { short, type SimStore } from './store.js';
import { Container, Rng, SIM_EPOCH, type World } from './world.js';

/**
 * Settlement events out (issue 21) in the simulation: the engine's writes stamp events through the real
 * stampForWrite (SimStore), and the real EventRelay hands them on against SimEventStore, in one of the
 * two shapes it runs in:
 * - local: one or two relay processes (two at once: two local stacks on one table), kicked after a write
 *   that stamped an event, with a slow poll as the backstop and `recoverAtBoot` when a crashed one restarts;
 * - AWS: one message per stamped write (the stream, the pipe and the bus, at least once: late, duplicated,
 *   or lost to the dead-letter queue) handled by `get` + `handOn` in one of two delivery containers
 *   (a failure is received again after the visibility timeout, five receives at most), and the
 *   one-minute backstop `drain(now - 5 min)`.
 * Relay containers crash like the engine's. Every choice here comes from the events' own generator, so a
 * seed's engine scenario is the one it was before events were simulated.
 */

export interface EventCounts {
  /** Writes that stamped a new event. */
  stamped: number;
  /** Events kept (published) by the relay. */
  kept: number;
  deliveries: number;
  /** Pending marks cleared by the relay. */
  cleared: number;
  /** Engine writes from a copy older than a clear: the mark is back, with no new event. */
  marksRestored: number;
  /** Engine writes that stamped an event on a record whose earlier pending event was not yet kept. */
  stampedOverPending: number;
  relayCrashes: number;
  /** Of those, crashes right after a delivery was made or an event kept, before the mark was cleared. */
  crashesAfterPublish: number;
  /** 1 when the run used the AWS shape (stream messages), 0 for local relays. */
  aws: number;
}

/** How long a live relay may take, with no faults, to keep the event of a record it was offered (a pass takes milliseconds, a slow one seconds). */
const OFFER_HANDED_ON_MS = 30_000;

/** History events of an operator's decision (shared/core/operator.ts) that are reported. */
const DECISIONS = new Set(['resolved_posted', 'resolved_not_posted', 'reposted', 'redriven']);
const REPORTED = new Set(['posted', 'failed', 'held', 'unknown']);

/**
 * The simulation's own reading of issue 21 and docs/events.md, kept from the writes it saw (never from
 * the record's outbox fields): a write is a transition when it records an operator's decision as its
 * newest history entry, or brings the record into a reported status other than the status and revision
 * last reported ("once per status per revision"; a decision reports the status it leaves the record in,
 * so `held` after a redrive is new). One transition, one event.
 */
export function transitionOf(before: PaymentRecord | undefined, after: PaymentRecord, reported: { status: string; revision: number } | undefined): string | undefined {
  const newest = after.history[after.history.length - 1];
  const previous = before?.history[before.history.length - 1];
  const added = newest !== undefined && (before === undefined || before.history.length !== after.history.length || JSON.stringify(newest) !== JSON.stringify(previous));
  if (added && DECISIONS.has(newest.event)) return `decision ${newest.event}`;
  if (!REPORTED.has(after.status)) return undefined;
  const revision = after.revision ?? 1;
  if (!reported || reported.status !== after.status || reported.revision !== revision) return `status ${after.status} r${revision}`;
  return undefined;
}

/** The endpoints of the scenario's callers: one takes everything, one has two (one of them filtered), one has none. */
function scenarioEndpoints(): Map<string, Endpoint[]> {
  const at = SIM_EPOCH - 60_000;
  const endpoint = (id: string, caller: string, eventTypes: Endpoint['eventTypes']): Endpoint => ({
    id,
    caller,
    url: `http://127.0.0.1:9/${id}`,
    eventTypes,
    secrets: [],
    createdAt: new Date(at).toISOString(),
    createdMs: at,
    updatedAt: new Date(at).toISOString(),
  });
  return new Map([
    ['pos-a', [endpoint('ep_a', 'pos-a', [])]],
    ['pos-b', [endpoint('ep_b1', 'pos-b', []), endpoint('ep_b2', 'pos-b', ['payment.posted', 'payment.failed'])]],
  ]);
}

interface Stamp {
  pk: string;
  event: LastEvent;
  transition: string;
}

export function simulateEvents(ctx: {
  seed: number;
  world: World;
  store: SimStore;
  violate: (invariant: string, detail: string) => void;
  quiet: () => boolean;
  storm: number;
  activeMs: number;
  onError: (actor: string) => (err: unknown) => void;
  /** Test hook: a broken relay, to show the invariants can fail (test/sim/sim.test.ts). */
  relay?: (store: RelayStore, opts: ConstructorParameters<typeof EventRelay>[1]) => EventRelay;
}): { counts: EventCounts; finish: (maxSteps: number) => Promise<void> } {
  const { world, store, violate } = ctx;
  const rng = new Rng(seededRandom((ctx.seed ^ 0x2545f491) >>> 0));
  const events = new SimEventStore(world, store, rng, scenarioEndpoints());
  const aws = rng.chance(0.4);
  const counts: EventCounts = { stamped: 0, kept: 0, deliveries: 0, cleared: 0, marksRestored: 0, stampedOverPending: 0, relayCrashes: 0, crashesAfterPublish: 0, aws: aws ? 1 : 0 };
  /** Every event stamped by a write the store applied, by id. */
  const stamps = new Map<string, Stamp>();
  /** Per record, the status and revision its last transition reported (the simulation's own bookkeeping). */
  const reported = new Map<string, { status: string; revision: number }>();

  const logger = (actor: string): Logger => {
    const l: Logger = {
      debug: () => undefined,
      info: () => undefined,
      warn: (message, fields) => world.log(actor, () => `${message}: ${(fields?.error as Error | undefined)?.message ?? ''}`),
      error: (message, fields) => world.log(actor, () => `${message}: ${(fields?.error as Error | undefined)?.message ?? ''}`),
      child: () => l,
    };
    return l;
  };

  // --- the checks made at each write --------------------------------------------------------------------
  store.observers.push((pk, before, after) => {
    const b = before as OutboxRecord | undefined;
    const a = after as OutboxRecord;
    const transition = transitionOf(before, after, reported.get(pk));
    if (transition) reported.set(pk, { status: after.status, revision: after.revision ?? 1 });
    const stamped = a.lastEvent && a.lastEvent.id !== b?.lastEvent?.id ? a.lastEvent : undefined;
    if (stamped) {
      counts.stamped++;
      world.log('events', () => `stamped ${stamped.id.slice(4, 10)} ${stamped.type} #${stamped.seq} r${stamped.revision} on ${short(pk)}${transition ? '' : ' (no transition)'}`);
      if (!transition) violate('event-without-transition', `${short(pk)} v${a.version} stamped ${stamped.type} #${stamped.seq} on a write that reports nothing new (${b?.status} -> ${a.status})`);
      const expectedSeq = (b?.lastEvent?.seq ?? 0) + 1;
      if (stamped.seq !== expectedSeq) violate('event-sequence', `${short(pk)} stamped #${stamped.seq} after #${expectedSeq - 1}`);
      // Per-payment order rests on the chain: a delivery waits while the one of `previousId` is pending to its endpoint.
      if (stamped.previousId !== b?.lastEvent?.id) violate('event-chain', `${short(pk)} stamped #${stamped.seq} after ${b?.lastEvent?.id.slice(4, 10) ?? 'none'} but names ${stamped.previousId?.slice(4, 10) ?? 'none'} as its previous`);
      if (stamped.id !== eventId(pk, stamped.revision, stamped.seq)) violate('event-id', `${short(pk)} stamped id ${stamped.id} for r${stamped.revision} #${stamped.seq}`);
      const seen = stamps.get(stamped.id);
      if (seen) violate('event-id-reused', `${short(pk)} stamped ${stamped.id.slice(4, 10)} for ${transition ?? 'no transition'}; it was stamped before for ${seen.transition}`);
      stamps.set(stamped.id, { pk, event: stamped, transition: transition ?? '-' });
      if (b?.eventsKey && b.pendingEvents?.some((e) => !events.events.has(e.id))) counts.stampedOverPending++;
      if (a.pendingEvents?.[a.pendingEvents.length - 1]?.id !== stamped.id || !a.eventsKey) violate('event-not-pending', `${short(pk)} stamped ${stamped.id.slice(4, 10)} without marking it pending`);
    } else if (transition) {
      violate('event-missing', `${short(pk)} v${a.version}: ${transition} stamped no event (last ${a.lastEvent?.type ?? 'none'} #${a.lastEvent?.seq ?? 0})`);
    }
    if (!b?.eventsKey && a.eventsKey && !stamped) counts.marksRestored++;
    // AWS: the stream's pipe keeps only the write that stamped (eventNew); an event a later write drops
    // from the outbox before it was kept is caught at the end (event-not-handed-on).
    // The message names the event and its pending mark, never the record (functions/event-delivery.ts).
    if (aws && a.eventNew && a.lastEvent && a.eventsKey && a.eventAt !== undefined) sendMessage({ pk, pointer: { id: a.lastEvent.id, eventsKey: a.eventsKey, at: a.eventAt } }, 1);
  });
  store.clearObservers.push((pk, before) => {
    counts.cleared++;
    world.log('events', () => `cleared ${short(pk)} ${(before as OutboxRecord).lastEvent?.id.slice(4, 10)}`);
  });

  // --- relays ----------------------------------------------------------------------------------------
  interface Relay {
    c: Container;
    relay: EventRelay;
    store: ReturnType<SimEventStore['view']>;
  }
  const relayOf = (name: string): Relay => {
    const c = new Container(name);
    const skew = rng.int(-500, 500);
    const opts = { log: logger(name), clock: () => world.now + skew };
    const store = events.view(c, name);
    return { c, store, relay: ctx.relay ? ctx.relay(store, opts) : new EventRelay(store, opts) };
  };
  const relays: Relay[] = [];
  const anyPending = () => {
    for (const r of store.records.values()) if ((r as OutboxRecord).eventsKey) return true;
    return false;
  };
  const names: string[] = [];
  let crashes = 0;

  const startLocal = (i: number, boot: boolean) => {
    const r = relayOf(names[i] as string);
    relays[i] = r;
    world.spawn(
      r.c,
      world.now,
      async () => {
        // A restarted local stack looks at kept data first (shared/local/stack.ts).
        if (boot) await r.relay.recoverAtBoot().catch((err: unknown) => world.log(r.c.name, () => `boot pass threw: ${(err as Error).message}`));
        // The fallback poll (2 s in the stack; minutes here, the kicks do the work). A poll that would
        // find nothing pending is skipped: it would read the index and do nothing (the seeds stay fast).
        for (let n = 0; n < 10_000 && !r.c.dead; n++) {
          await world.sleep(r.c, rng.int(60_000, 300_000));
          if (anyPending()) r.relay.kick();
        }
      },
      ctx.onError(r.c.name),
    );
  };

  // AWS: one message per stamped write, handled in a delivery container; a failure is received again. `pk`
  // is for the log only: the handler finds the record by the pointer, as functions/event-delivery.ts does.
  interface Message {
    pk: string;
    pointer: PendingPointer;
  }
  const handle = async (r: Relay, m: Message) => {
    for (const record of await recordsPointedAt(r.store, m.pointer)) if (record.eventsKey) await r.relay.handOn(record);
  };
  function sendMessage(m: Message, receive: number): void {
    const { pk } = m;
    if (receive === 1 && !ctx.quiet() && rng.chance(0.03 * ctx.storm)) {
      world.log('events', () => `message of ${short(pk)} dead-lettered by the pipe`);
      return;
    }
    const copies = receive === 1 && rng.chance(0.05) ? 2 : 1;
    for (let k = 0; k < copies; k++) {
      world.spawn(
        undefined,
        world.now + (receive === 1 ? rng.int(200, 5_000) : 120_000),
        async () => {
          const r = relays[rng.int(0, relays.length - 1)] as Relay;
          let done = false;
          // The visibility timeout: a message whose handler died or failed is received again, five times at most.
          world.spawn(
            undefined,
            world.now + 120_000,
            async () => {
              if (!done && receive < 5) sendMessage(m, receive + 1);
              else if (!done) world.log('events', () => `message of ${short(pk)} dead-lettered after 5 receives`);
            },
            ctx.onError('events'),
          );
          world.spawn(
            r.c,
            world.now,
            async () => {
              try {
                await handle(r, m);
                done = true;
              } catch (err) {
                world.log(r.c.name, () => `message of ${short(pk)} failed: ${(err as Error).message}`);
              }
            },
            ctx.onError(r.c.name),
          );
        },
        ctx.onError('events'),
      );
    }
  }
  const startAws = (i: number) => {
    const r = relayOf(names[i] as string);
    relays[i] = r;
    if (i !== 0) return;
    // The one-minute schedule: the backstop for a message the pipe or the queue dead-lettered.
    world.spawn(
      r.c,
      world.now,
      async () => {
        for (let n = 0; n < 10_000 && !r.c.dead; n++) {
          await world.sleep(r.c, 60_000);
          if (anyPending()) await r.relay.drain(world.now - 300_000).catch((err: unknown) => world.log(r.c.name, () => `backstop threw: ${(err as Error).message}`));
        }
      },
      ctx.onError(r.c.name),
    );
  };

  const two = aws || rng.chance(0.3);
  names.push(aws ? 'delivery-1' : 'relay-1', ...(two ? [aws ? 'delivery-2' : 'relay-2'] : []));
  names.forEach((_, i) => (aws ? startAws(i) : startLocal(i, false)));
  if (!aws) {
    // The local stack offers its relay the record a write just stamped, as written (shared/local/stack.ts
    // wakingStore, EventRelay.offer: handed on from that copy, no index read); some wake-ups are kicks (the
    // poll, a write of another process), which read the index. An offered copy may be stale by then.
    store.observers.push((pk, _before, after, _writer, heard) => {
      if (!(after as OutboxRecord).eventNew) return;
      const offer = rng.chance(0.7);
      world.spawn(
        undefined,
        world.now + rng.int(0, 50),
        async () => {
          const r = relays[rng.int(0, relays.length - 1)] as Relay;
          // The stack offers only what a write of its own reported written (wakingStore): a write whose reply was
          // lost, or whose writer died, wakes nothing; the poll (or another wake-up) finds it.
          if (offer && !heard) return;
          if (offer) {
            r.relay.offer(after as OutboxRecord);
            const id = (after as OutboxRecord).lastEvent?.id;
            if (id && !r.c.dead) offers.push({ pk, id, c: r.c, at: world.now });
          } else r.relay.kick();
        },
        ctx.onError('events'),
      );
    });
  }
  /**
   * Offers made to a live local relay. Each must have its event kept within OFFER_HANDED_ON_MS (from the copy
   * offered: the poll, minutes here, is no part of it), unless that relay died or one of its writes met a
   * fault meanwhile (the pass that met it leaves what it held to the poll). One only the poll or the final
   * pass hands on was lost by the offered path, which `event-not-handed-on` cannot tell (test/sim/sim.test.ts).
   */
  const offers: { pk: string; id: string; c: Container; at: number }[] = [];
  const diedAt = new Map<Container, number>();
  /** A relay container dies with its work in flight; a fresh one takes its place (a local one boots with a scan). */
  const crash = (i: number, why: string) => {
    const old = relays[i] as Relay;
    if (old.c.dead) return;
    old.c.dead = true;
    diedAt.set(old.c, world.now);
    old.c.controller.abort(new Error('simulated crash'));
    crashes++;
    counts.relayCrashes++;
    names[i] = `${(names[i] as string).split("'")[0]}'${crashes}`;
    world.log('CRASH', () => `${old.c.name} died ${why}; ${names[i]} starts`);
    if (aws) startAws(i);
    else startLocal(i, true);
  };
  // Crashes of the relay's containers, while faults happen: at random moments, and right after keeping an
  // event (before its deliveries are all made or its mark is cleared), the window the relay's idempotence is for.
  for (let n = rng.chance(0.5) ? rng.int(1, 3) : 0; n > 0; n--) {
    world.spawn(undefined, SIM_EPOCH + rng.int(0, ctx.activeMs), async () => crash(rng.int(0, relays.length - 1), 'with its work in flight'), ctx.onError('crash'));
  }
  const crashAfterPublish = rng.chance(0.3) ? 0.05 : 0;
  events.onApplied = (what, container) => {
    if (what === 'clearPending' || ctx.quiet() || !rng.chance(crashAfterPublish)) return;
    const i = relays.findIndex((r) => r.c === container);
    if (i < 0) return;
    counts.crashesAfterPublish++;
    crash(i, 'right after a write of its relay pass');
  };

  // --- the end: a quiescent pass, then every event must have been handed on ---------------------------
  const finish = async (maxSteps: number) => {
    const ended = world.now;
    for (const r of relays) r.c.dead = true;
    for (const o of offers) {
      const by = o.at + OFFER_HANDED_ON_MS;
      if (by > ended || (diedAt.get(o.c) ?? Infinity) <= by || (events.faultsAt.get(o.c) ?? []).some((t) => t >= o.at && t <= by)) continue;
      const kept = events.keptAt.get(o.id);
      if (kept === undefined || kept > by) violate('offer-not-handed-on', `${short(o.pk)}: ${o.id.slice(4, 10)} offered to ${o.c.name} at +${Math.round((o.at - SIM_EPOCH) / 1000)} s was ${kept === undefined ? 'not kept by its relays' : `kept only ${Math.round((kept - o.at) / 1000)} s later`}`);
    }
    store.faults = { errorBefore: 0, lostReply: 0, sdkRetryEcho: 0, onCheckpoints: false };
    world.resume();
    // What was on the wire lands (a dead container's write already sent), nothing else runs.
    if (!(await world.run(Number.POSITIVE_INFINITY, () => undefined, maxSteps))) return violate('livelock', 'the run did not wind down');
    const last = relayOf('relay-final');
    world.spawn(
      last.c,
      world.now,
      async () => {
        await last.relay.recoverAtBoot();
        await last.relay.drain(Number.POSITIVE_INFINITY);
      },
      ctx.onError('relay-final'),
    );
    if (!(await world.run(Number.POSITIVE_INFINITY, () => undefined, maxSteps))) return violate('livelock', 'the final relay pass did not end');
    check();
  };

  const check = () => {
    counts.kept = events.kept.length;
    counts.deliveries = events.deliveries.size;
    for (const [id, s] of stamps) {
      const kept = events.events.get(id);
      if (!kept) {
        violate('event-not-handed-on', `${short(s.pk)}: ${s.event.type} #${s.event.seq} (${id.slice(4, 10)}, ${s.transition}) was never published`);
        continue;
      }
      const d = kept.event.data;
      if (kept.previousId !== s.event.previousId) violate('event-chain', `${short(s.pk)}: ${id.slice(4, 10)} was kept with previous ${kept.previousId?.slice(4, 10) ?? 'none'}, stamped with ${s.event.previousId?.slice(4, 10) ?? 'none'}`);
      if (kept.event.type !== s.event.type || d.sequence !== s.event.seq || d.revision !== s.event.revision || d.status !== s.event.status) {
        violate('event-content', `${short(s.pk)}: ${id.slice(4, 10)} was stamped as ${s.event.type} #${s.event.seq} ${s.event.status} but published as ${kept.event.type} #${d.sequence} ${d.status}`);
      }
      for (const e of events.endpointsOf(kept.caller)) {
        if (wants(e, kept.event.type, kept.createdMs) && !events.deliveries.has(`${e.id}#${id}`)) violate('delivery-missing', `${short(s.pk)}: ${kept.event.type} #${d.sequence} has no delivery to ${e.id}`);
      }
    }
    const published = new Map<string, number[]>();
    for (const id of events.kept) {
      const s = stamps.get(id);
      const e = events.events.get(id);
      if (!s) {
        violate('event-phantom', `published ${e?.event.type} #${e?.event.data.sequence} of ${e?.event.data.system}:${e?.event.data.key} (${id.slice(4, 10)}), which no applied write stamped`);
        continue;
      }
      published.set(s.pk, [...(published.get(s.pk) ?? []), s.event.seq]);
    }
    for (const [pk, seqs] of published) {
      const sorted = [...seqs].sort((x, y) => x - y);
      const n = (store.records.get(pk) as OutboxRecord | undefined)?.lastEvent?.seq ?? 0;
      if (sorted.length !== n || sorted.some((x, i) => x !== i + 1)) violate('event-sequence-published', `${short(pk)}: published sequence numbers ${sorted.join(',')} for ${n} events`);
    }
    for (const r of store.records.values()) {
      const o = r as OutboxRecord;
      if (o.eventsKey) violate('event-still-pending', `${short(r.pk)} still marks ${o.lastEvent?.type} #${o.lastEvent?.seq} pending after the final relay pass`);
    }
    for (const d of events.deliveries.values()) {
      if (!stamps.has(d.eventId)) violate('event-phantom', `a delivery to ${d.endpointId} of ${d.eventId.slice(4, 10)}, which no applied write stamped`);
    }
  };

  return { counts, finish };
}
