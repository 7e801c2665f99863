import { encodeRetryMessage, type MessageKeys } from '../../shared/queue/port.js';
import type { RetryQueue } from '../../shared/queue/port.js';
import type { Container, World } from './world.js';

/**
 * The retry queues with SQS's semantics: at-least-once delivery, integer-second delays, a visibility
 * timeout after a receive, partial batch failures, a dead-letter list after five receives. Faults:
 * a send that fails, a send whose reply is lost (sent, but the caller hears an error), a duplicate,
 * late delivery and reordering within a receive.
 */

export interface QueueFaults {
  sendError: number;
  lostReply: number;
  duplicate: number;
  /** A received message stays visible too (SQS's at-least-once): another receive may get it as well. */
  redeliver: number;
  /** Extra delivery lateness, up to this many ms. */
  lateMs: number;
}

export const NO_QUEUE_FAULTS: QueueFaults = { sendError: 0, lostReply: 0, duplicate: 0, redeliver: 0, lateMs: 0 };

export interface SimMessage {
  id: string;
  system: string;
  body: string;
  visibleAt: number;
  receiveCount: number;
}

export const VISIBILITY_TIMEOUT_MS = 120_000;
export const MAX_RECEIVES = 5;

/** The simulation's one RETRY_MESSAGE_KEY, shared by every container as a stage's SSM parameter is. */
export const SIM_MESSAGE_KEYS: MessageKeys = { sign: 'simulation-retry-message-key-0123456789abcdef', verify: ['simulation-retry-message-key-0123456789abcdef'] };

export class SimQueue {
  private readonly queues = new Map<string, SimMessage[]>();
  readonly deadLetters: SimMessage[] = [];
  faults: QueueFaults = NO_QUEUE_FAULTS;
  private ids = 0;
  private readonly waiters = new Map<string, (() => void)[]>();

  constructor(private readonly world: World) {}

  private list(system: string): SimMessage[] {
    let q = this.queues.get(system);
    if (!q) {
      q = [];
      this.queues.set(system, q);
    }
    return q;
  }

  private latency(): number {
    return this.world.rng.int(2, 15);
  }

  private add(system: string, body: string, delaySeconds: number): void {
    const r = this.world.rng;
    const late = this.faults.lateMs > 0 && r.chance(0.2) ? r.int(0, this.faults.lateMs) : 0;
    this.list(system).push({ id: `m${++this.ids}`, system, body, visibleAt: this.world.now + delaySeconds * 1000 + late, receiveCount: 0 });
    const waiting = this.waiters.get(system);
    if (waiting) {
      this.waiters.delete(system);
      for (const wake of waiting) wake();
    }
  }

  /** Resolves when the next message is put on `system`'s queue (a worker with nothing to do waits here). */
  arrival(container: Container, system: string): Promise<void> {
    return new Promise<void>((resolve) => {
      const list = this.waiters.get(system) ?? [];
      list.push(() => {
        if (!container.dead) resolve();
      });
      this.waiters.set(system, list);
    });
  }

  view(container: Container | undefined, actor: string): RetryQueue {
    const w = this.world;
    return {
      send: (message, delaySeconds) =>
        w.io(
          container,
          this.latency(),
          () => {
            const r = w.rng;
            if (r.chance(this.faults.sendError)) {
              w.log(actor, () => `queue send ${message.reason}: failed, nothing sent`);
              throw new Error('simulated: SendMessage failed');
            }
            // Signed as every queue adapter signs (RETRY_MESSAGE_KEY): the worker reads nothing unsigned.
            const body = encodeRetryMessage(message, SIM_MESSAGE_KEYS);
            this.add(message.system, body, delaySeconds);
            if (r.chance(this.faults.duplicate)) this.add(message.system, body, delaySeconds);
            if (r.chance(this.faults.lostReply)) {
              w.log(actor, () => `queue send ${message.reason}: sent, reply lost`);
              throw new Error('simulated: SendMessage reply lost');
            }
          },
          true,
        ),
      depth: (system) => w.io(container, this.latency(), () => this.list(system).filter((m) => m.visibleAt <= w.now).length),
    };
  }

  /** Up to `max` visible messages of `system`, hidden for the visibility timeout (or not, at least once). */
  receive(container: Container, system: string, max: number): Promise<SimMessage[]> {
    const w = this.world;
    return w.io(container, this.latency(), () => {
      const r = w.rng;
      const q = this.list(system);
      const visible = q.filter((m) => m.visibleAt <= w.now);
      // SQS gives no order: the oldest first mostly, a shuffled batch now and then.
      if (r.chance(0.3)) {
        for (let i = visible.length - 1; i > 0; i--) {
          const j = r.int(0, i);
          [visible[i], visible[j]] = [visible[j] as SimMessage, visible[i] as SimMessage];
        }
      }
      const batch = visible.slice(0, max);
      for (const m of batch) {
        m.receiveCount++;
        if (!r.chance(this.faults.redeliver)) m.visibleAt = w.now + VISIBILITY_TIMEOUT_MS;
      }
      return batch.map((m) => ({ ...m }));
    });
  }

  /** Deletes handled messages; the failed ones come back after their visibility timeout (or go to the dead letters). */
  finish(container: Container, system: string, batch: SimMessage[], failed: ReadonlySet<string>): Promise<void> {
    const w = this.world;
    return w.io(container, this.latency(), () => {
      const q = this.list(system);
      for (const m of batch) {
        const i = q.findIndex((x) => x.id === m.id);
        if (i < 0) continue;
        const held = q[i] as SimMessage;
        if (!failed.has(m.id)) q.splice(i, 1);
        else if (held.receiveCount >= MAX_RECEIVES) {
          q.splice(i, 1);
          this.deadLetters.push(held);
        }
      }
    });
  }

  /** Visible or delayed messages left on every queue. */
  size(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.length;
    return n;
  }

  nextVisible(system: string): number | undefined {
    let at: number | undefined;
    for (const m of this.list(system)) if (at === undefined || m.visibleAt < at) at = m.visibleAt;
    return at;
  }
}
