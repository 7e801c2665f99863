import { createHash, randomBytes } from 'node:crypto';
import type { Dispatcher } from 'undici';
// The request API from its own module, as shared/systems/http.ts takes it: the package entry brings fetch, WebSocket and the cache.
import request from 'undici/lib/api/api-request.js';
import { Webhook } from 'standardwebhooks';
import type { Logger } from '../log.js';
import { eventId, type PaymentEvent } from './model.js';
import { ENDPOINTS_KEPT_MS, fanOut } from './relay.js';
import { guardedAgent, urlProblems, type UrlPolicy } from './ssrf.js';
import type { Attempt, Delivery, Endpoint, EventStore } from './store.js';

/**
 * Standard Webhooks' retry schedule (standardwebhooks.com, "Retry schedule"): the delay before each try
 * after the first. Ten tries over about three days; then the delivery is `exhausted`.
 */
export const RETRY_SCHEDULE_MS: readonly number[] = [0, 5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 50_400_000, 72_000_000, 86_400_000];

export interface DeliverySettings {
  schedule: readonly number[];
  /** Each delay is spread by up to this fraction either way (full schedules of many endpoints do not align). */
  jitter: number;
  timeoutMs: number;
  /** An endpoint failing without a success for this long is disabled. */
  disableAfterMs: number;
  /** Bytes of an answer kept with its attempt. */
  answerBytes: number;
  /** How long a rotated-out secret still signs. */
  rotationOverlapMs: number;
}

export const DEFAULT_DELIVERY: DeliverySettings = {
  schedule: RETRY_SCHEDULE_MS,
  jitter: 0.2,
  timeoutMs: 15_000,
  disableAfterMs: 5 * 86_400_000,
  answerBytes: 256,
  rotationOverlapMs: 86_400_000,
};

/** A claimed delivery is due again this long after its request would have timed out (a sender that died mid-send). */
const CLAIM_SLACK_MS = 30_000;
/** Due deliveries one pass reads and sends (a full batch: another pass follows). */
const DUE_BATCH = 25;

/** Bodies over this are not what Standard Webhooks recommends (and what receivers accept): events stay far below. */
export const MAX_EVENT_BYTES = 20 * 1024;

/** `whsec_` and 24 random bytes, base64: the form the standardwebhooks libraries read. */
export function newSecret(): string {
  return `whsec_${randomBytes(24).toString('base64')}`;
}

/** The secrets that sign now: every one not past its overlap. */
export function signingSecrets(endpoint: Endpoint, now: number): string[] {
  return endpoint.secrets.filter((s) => s.until === undefined || s.until > now).map((s) => s.secret);
}

/** The three Standard Webhooks headers for `body`, signed with each secret (space-separated `v1,` signatures). */
export function signedHeaders(secrets: readonly string[], id: string, at: Date, body: string): Record<string, string> {
  return {
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': secrets.map((s) => new Webhook(s).sign(id, at, body)).join(' '),
  };
}

/** What one answer means for the delivery and its endpoint (pure, table-tested). */
export type AnswerKind = 'delivered' | 'gone' | 'slow-down' | 'failed';
export function classifyAnswer(status: number, retryAfter: string | undefined): AnswerKind {
  if (status >= 200 && status < 300) return 'delivered';
  if (status === 410) return 'gone';
  if (status === 429 || status === 502 || status === 504 || (retryAfter !== undefined && status !== 0)) return 'slow-down';
  return 'failed';
}

/** Retry-After as ms: seconds or an HTTP date; undefined when absent or unreadable. Capped at a day. */
export function retryAfterMs(value: string | undefined, now: number): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(value) - now;
  return Number.isFinite(ms) ? Math.min(Math.max(0, ms), 86_400_000) : undefined;
}

/** When the try after `tries` failed tries is due, or undefined when the schedule is spent. */
export function nextTryAt(tries: number, now: number, settings: Pick<DeliverySettings, 'schedule' | 'jitter'>, random: () => number): number | undefined {
  const delay = settings.schedule[tries];
  if (delay === undefined) return undefined;
  return now + Math.round(delay * (1 + settings.jitter * (2 * random() - 1)));
}

/** An endpoint's loop: its run, and what its next pass sends (due deliveries read from the index, or those offered). */
interface Loop {
  running?: Promise<void>;
  again: boolean;
  timer?: NodeJS.Timeout;
  /** The next pass reads the index (a kick: the poll, a timer, an API change); otherwise it sends what was offered. */
  scan: boolean;
  /** Deliveries the local relay just made (Deliverer.offer), by event id: sent without reading them back. */
  offered: Map<string, Delivery>;
  /** Event ids this loop has sent lately (an offered copy of one a scan sent already is not sent again). */
  sent: Set<string>;
  /**
   * The endpoint's next due time as this loop knows it (Infinity: none pending), or null when unknown: read
   * from the index after a scanning pass, then lowered by every retry this loop records. The timer is set
   * from it without a Query after a pass that sent only offered deliveries.
   */
  nextDue: number | null;
  /** Runs begun (a timer set from a read made before the latest began is not set). */
  runs: number;
}

/** Event ids a loop remembers having sent (far more than the moments between a delivery's write and its offer). */
const SENT_REMEMBERED = 1_000;

/**
 * Delivers each endpoint's due deliveries, one endpoint independent of another: every endpoint has its own
 * loop, one request in flight at a time, in order of due time, so a slow or dead endpoint delays only its
 * own events. Within an endpoint, a payment's later event waits while its earlier one is pending there.
 */
export class Deliverer {
  private readonly loops = new Map<string, Loop>();
  /** Endpoints as last read by the loops, with the store's endpoint generation at the read. */
  private readonly endpoints = new Map<string, { generation: number; at: number; endpoint: Endpoint | undefined }>();
  private readonly dispatcher: Dispatcher;
  private readonly settings: DeliverySettings;
  private closed = false;
  private poll: NodeJS.Timeout | undefined;
  /** Successful deliveries, for the benchmark and tests. */
  delivered = 0;

  constructor(
    private readonly store: EventStore,
    private readonly opts: {
      log: Logger;
      policy: UrlPolicy;
      /** Every caller that may own endpoints (the configured ones): their endpoints are looked up at start and on poll. */
      callers: () => string[];
      settings?: Partial<DeliverySettings>;
      clock?: () => number;
      random?: () => number;
      pollMs?: number;
    },
  ) {
    this.settings = { ...DEFAULT_DELIVERY, ...opts.settings };
    this.dispatcher = guardedAgent(opts.policy, this.settings.timeoutMs);
  }

  private now(): number {
    return (this.opts.clock ?? Date.now)();
  }

  /** Looks up every caller's endpoints now and then (one registered by another process, a timer lost). */
  start(): this {
    const every = this.opts.pollMs ?? 5_000;
    const tick = () => void this.kickAll().catch((err: Error) => this.opts.log.warn('event delivery poll failed', { error: err }));
    tick();
    this.poll = setInterval(tick, every);
    this.poll.unref();
    return this;
  }

  /** Endpoints this deliverer keeps a loop for (tests: a deleted endpoint's is dropped). */
  endpointsTracked(): number {
    return this.loops.size;
  }

  async kickAll(): Promise<void> {
    for (const caller of this.opts.callers()) for (const e of await this.store.listEndpoints(caller)) this.kick(e.id);
  }

  private loop(endpointId: string): Loop {
    let loop = this.loops.get(endpointId);
    if (!loop) this.loops.set(endpointId, (loop = { again: false, scan: true, offered: new Map(), sent: new Set(), nextDue: null, runs: 0 }));
    return loop;
  }

  /** Runs an endpoint's loop soon, reading its due deliveries; loops of one endpoint never overlap. */
  kick(endpointId: string): void {
    if (this.closed) return;
    this.loop(endpointId).scan = true;
    this.run(endpointId);
  }

  /**
   * Deliveries the local relay has just written (EventRelay's onDeliveries): sent by their endpoint's loop
   * as they are, without the index Query, the BatchGetItem and the next-due Query a scanning pass costs for
   * each (issue 23: DynamoDB requests per payment). Safe if one is lost here (a kill): it is in the table,
   * due now, and the next scanning pass (the poll, a start) finds it. Sent once: a loop skips an offered copy
   * of a delivery it has sent, and its write of the outcome is conditional on the tries it was read at.
   */
  offer(deliveries: readonly Delivery[]): void {
    if (this.closed) return;
    const endpoints = new Set<string>();
    for (const d of deliveries) {
      const loop = this.loop(d.endpointId);
      if (!loop.sent.has(d.eventId)) loop.offered.set(d.eventId, d);
      endpoints.add(d.endpointId);
    }
    for (const id of endpoints) this.run(id);
  }

  private run(endpointId: string): void {
    if (this.closed) return;
    const l = this.loop(endpointId);
    if (l.running) {
      l.again = true;
      return;
    }
    clearTimeout(l.timer);
    l.runs++;
    l.running = (async () => {
      // The endpoint as the last pass read it: the timer for the next due delivery is set from it, without
      // reading it once more (a pass reads it afresh before it sends anything).
      let seen: Endpoint | undefined | null = null;
      try {
        for (let pass = 0; pass < 1000 && !this.closed; pass++) {
          l.again = false;
          seen = null;
          const done = await this.pass(endpointId, false, l);
          seen = done.endpoint;
          // A full page of the index may have more behind it: the next pass reads it again.
          if (done.more && done.scanned) l.scan = true;
          // A pass whose index page was short of a batch has sent everything due when it read: another pass
          // only when a kick came in meanwhile (a new delivery), not one more read of an empty due list.
          // An offered pass takes its batch out of `offered`: with more left, the next pass sends them even if this one only waited.
          if (!l.again && (!done.more || (!done.worked && done.scanned))) break;
        }
      } catch (err) {
        // The next pass (the poll's, or a kick's) reads the index: what this one left is found there.
        l.scan = true;
        l.nextDue = null;
        if (!this.closed) this.opts.log.warn('event delivery pass failed; retried on the next poll', { error: err, endpoint: endpointId });
      } finally {
        l.running = undefined;
        if (seen === undefined && !l.again && l.offered.size === 0 && this.loops.get(endpointId) === l) {
          // The endpoint is gone (deleted): nothing of it is kept for the life of the process. Its deliveries
          // are not sent (a pass drops them), and a later offer or kick starts a loop of its own again.
          clearTimeout(l.timer);
          this.loops.delete(endpointId);
          this.endpoints.delete(endpointId);
        } else if (!this.closed) await this.wakeLater(endpointId, seen).catch(() => undefined);
      }
    })();
  }

  /** A timer for the endpoint's next due delivery (or its pause's end). */
  private async wakeLater(endpointId: string, seen: Endpoint | undefined | null = null): Promise<void> {
    const loop = this.loops.get(endpointId);
    if (!loop || this.closed) return;
    // null: the last pass failed before it read it: read here.
    const endpoint = seen === null ? await this.store.getEndpoint(endpointId) : seen;
    if (!endpoint || endpoint.disabled) return;
    if (loop.nextDue === null) {
      const runs = loop.runs;
      const next = (await this.store.nextDue(endpointId)) ?? Infinity;
      // A run begun meanwhile sets its own timer when it ends, from what it knows then: this read may be older.
      if (loop.runs !== runs || loop.running) return;
      loop.nextDue = next;
    }
    const next = Math.max(loop.nextDue, endpoint.pausedUntil ?? 0);
    if (!Number.isFinite(next)) return;
    clearTimeout(loop.timer);
    // setTimeout's ceiling is about 24.8 days; the poll covers anything beyond a day.
    loop.timer = setTimeout(() => this.kick(endpointId), Math.min(Math.max(0, next - this.now()) + 5, 86_400_000));
    loop.timer.unref();
  }

  /**
   * One batch of an endpoint's due deliveries: whether it sent something, whether another batch may be due
   * (a full index page, not stopped), and the endpoint as last read (with the pause it may have set).
   * `claim`: each is taken (EventStore.claimDelivery) before it is sent, where other processes may send the
   * same endpoint's deliveries at once (the AWS function's concurrent invocations); one process's own loops
   * never overlap per endpoint, so the local stack spares that write.
   */
  private async pass(endpointId: string, claim = false, loop?: Loop): Promise<{ worked: boolean; more: boolean; scanned: boolean; endpoint: Endpoint | undefined }> {
    // A loop keeps the endpoint it read while no endpoint write was counted since (the local stack: the API's,
    // the deliverer's own, and any the embedded dynalite answered), and 1 s at most; the AWS function
    // (`claim`) reads it each time.
    const read = loop ? () => this.endpointOf(endpointId) : () => this.store.getEndpoint(endpointId);
    let endpoint = await read();
    const now = this.now();
    const usable = (e: Endpoint | undefined): e is Endpoint => e !== undefined && !e.disabled && (e.pausedUntil ?? 0) <= this.now();
    const scanned = !loop || loop.scan || loop.offered.size === 0;
    if (!usable(endpoint)) {
      // Paused or gone: what was offered stays in the table, for the scan after the pause.
      if (loop) dropOffered(loop);
      return { worked: false, more: false, scanned, endpoint };
    }
    let due: Delivery[];
    let full: boolean;
    if (scanned) {
      if (loop) {
        // The index shows every delivery offered so far (each was written before it was offered).
        loop.scan = false;
        loop.offered.clear();
        loop.nextDue = null;
      }
      ({ deliveries: due, full } = await this.store.due(endpointId, now, DUE_BATCH));
    } else {
      const offered = [...loop!.offered.values()].sort((a, b) => a.nextAttemptAt - b.nextAttemptAt || a.createdMs - b.createdMs);
      due = offered.slice(0, DUE_BATCH);
      for (const d of due) loop!.offered.delete(d.eventId);
      full = offered.length > DUE_BATCH;
    }
    let worked = false;
    let stopped = false;
    for (const d of due) {
      if (this.closed) break;
      if (loop?.sent.has(d.eventId) && !scanned) continue;
      // Read again before each send after the first: a batch can take minutes (15 s a request), and the caller may
      // have moved the endpoint to another URL, rotated its secret or deleted it meanwhile.
      if (worked) {
        endpoint = await read();
        if (!usable(endpoint)) {
          stopped = true;
          break;
        }
      }
      if (d.previousId) {
        const before = await this.store.getDelivery(endpointId, d.previousId);
        if (before && before.status === 'pending') {
          // Behind its predecessor: due again just after it.
          const waited: Delivery = { ...d, nextAttemptAt: Math.max(before.nextAttemptAt + 1, now + 1) };
          if (await this.store.recordAttempt({ ...waited, tries: d.tries }, d.tries)) {
            if (loop && loop.nextDue !== null) loop.nextDue = Math.min(loop.nextDue, waited.nextAttemptAt);
            continue;
          }
        }
      }
      if (claim && !(await this.store.claimDelivery(d, this.now() + this.settings.timeoutMs + CLAIM_SLACK_MS))) continue;
      if (loop) remember(loop, d.eventId);
      const outcome = await this.attempt(endpoint, d, loop);
      worked = true;
      if (outcome === 'stop') {
        stopped = true;
        break;
      }
    }
    if (stopped && loop) dropOffered(loop);
    // A full page of the index may have more behind it; a stopped one (paused, disabled) is left to the timer.
    return { worked, more: !stopped && full, scanned, endpoint };
  }

  /** The endpoint as a loop last read it, while that read is still what the table holds (see `pass`), kept as EventRelay keeps endpoint lists. */
  private async endpointOf(id: string): Promise<Endpoint | undefined> {
    // Another process's write to a DynamoDB the stack was given is not counted: read each time there.
    if (!this.store.countsEveryEndpointWrite()) return this.store.getEndpoint(id);
    const generation = this.store.endpointGeneration();
    const kept = this.endpoints.get(id);
    if (kept && kept.generation === generation && this.now() - kept.at < ENDPOINTS_KEPT_MS) return kept.endpoint && { ...kept.endpoint };
    const at = this.now();
    const endpoint = await this.store.getEndpoint(id);
    // Kept only if no endpoint write began or ended while it was read.
    if (this.store.endpointGeneration() === generation) this.endpoints.set(id, { generation, at, endpoint });
    else this.endpoints.delete(id);
    return endpoint && { ...endpoint };
  }

  /** Sends one delivery and records what came of it. 'stop' when the endpoint must not be sent more now. */
  async attempt(endpoint: Endpoint, d: Delivery, loop?: Loop): Promise<'next' | 'stop'> {
    const startedAt = this.now();
    const body = JSON.stringify(d.event);
    let status = 0;
    let answer = '';
    let retryAfter: string | undefined;
    const refused = urlProblems(endpoint.url, this.opts.policy);
    if (refused.length > 0) answer = `not sent: the URL ${refused[0]}`;
    else {
      try {
        // What the package entry's request(url, options) does before it dispatches: split the URL.
        const url = new URL(endpoint.url);
        const res = await request.call(this.dispatcher, {
          origin: url.origin,
          path: `${url.pathname}${url.search}`,
          method: 'POST',
          headers: { 'content-type': 'application/json', 'user-agent': 'paybridge-webhooks/1', ...signedHeaders(signingSecrets(endpoint, startedAt), d.event.id, new Date(startedAt), body) },
          body,
          signal: AbortSignal.timeout(this.settings.timeoutMs),
        });
        status = res.statusCode;
        const ra = res.headers['retry-after'];
        retryAfter = Array.isArray(ra) ? ra[0] : ra;
        answer = await readSome(res.body, this.settings.answerBytes);
      } catch (err) {
        answer = `no answer: ${(err as NodeJS.ErrnoException).code ?? (err as Error).name}: ${(err as Error).message}`.slice(0, this.settings.answerBytes);
      }
    }
    const at = this.now();
    const attempt: Attempt = { at: new Date(startedAt).toISOString(), status, ms: at - startedAt, answer };
    const kind = classifyAnswer(status, retryAfter);
    const tries = d.tries + 1;
    const base = { ...d, tries, attempts: [...d.attempts, attempt], updatedAt: new Date(at).toISOString() };
    if (kind === 'delivered') {
      await this.store.recordAttempt({ ...base, status: 'delivered' }, d.tries);
      if (endpoint.failingSince !== undefined || endpoint.pausedUntil !== undefined) await this.store.patchEndpoint(endpoint.id, {}, ['failingSince', 'pausedUntil']);
      this.delivered++;
      return 'next';
    }
    const next = nextTryAt(tries, at, this.settings, this.opts.random ?? Math.random);
    const pauseMs = retryAfterMs(retryAfter, at);
    const again = next === undefined ? undefined : Math.max(next, pauseMs !== undefined ? at + pauseMs : 0);
    const recorded = await this.store.recordAttempt(again === undefined ? { ...base, status: 'exhausted' } : { ...base, nextAttemptAt: again }, d.tries);
    if (recorded && again !== undefined && loop && loop.nextDue !== null) loop.nextDue = Math.min(loop.nextDue, again);
    if (next === undefined) this.opts.log.warn('event delivery exhausted its schedule', { endpoint: endpoint.id, eventId: d.event.id, tries });
    const failingSince = endpoint.failingSince ?? at;
    if (kind === 'gone') {
      await this.disable(endpoint, 'the endpoint answered 410 Gone');
      return 'stop';
    }
    if (at - failingSince >= this.settings.disableAfterMs) {
      await this.disable(endpoint, `failing without a success since ${new Date(failingSince).toISOString()}`);
      return 'stop';
    }
    if (kind === 'slow-down') {
      // The whole endpoint waits (it asked to be sent less), not just this delivery.
      const until = at + Math.max(pauseMs ?? 0, this.settings.schedule[1] ?? 5_000);
      await this.store.patchEndpoint(endpoint.id, { failingSince, pausedUntil: until });
      endpoint.pausedUntil = until;
      endpoint.failingSince = failingSince;
      return 'stop';
    }
    if (endpoint.failingSince === undefined) {
      await this.store.patchEndpoint(endpoint.id, { failingSince });
      endpoint.failingSince = failingSince;
    }
    return 'next';
  }

  /**
   * Tells the caller's other endpoints, then disables the endpoint and raises the alarm. In that order: a
   * process that dies before the disable leaves the endpoint enabled, so its next failure does all of it
   * again, and the event's id (the endpoint and the version read before disabling it) makes nothing twice.
   * Disabled first, a death before the event left it disabled with no one told, and nothing to retry it.
   */
  private async disable(endpoint: Endpoint, reason: string): Promise<void> {
    const at = this.now();
    const event: PaymentEvent = {
      id: eventId(`endpoint#${endpoint.id}`, 0, endpoint.version ?? 0),
      type: 'endpoint.disabled',
      timestamp: new Date(at).toISOString(),
      data: { endpointId: endpoint.id, url: endpoint.url, reason },
    };
    const others = (await this.store.listEndpoints(endpoint.caller)).filter((e) => e.id !== endpoint.id && !e.disabled && (e.eventTypes.length === 0 || (e.eventTypes as string[]).includes('endpoint.disabled')));
    const stored = { event, caller: endpoint.caller, createdMs: at };
    const told = await fanOut(this.store, stored, at, others);
    await this.store.putEvent(stored);
    await this.store.patchEndpoint(endpoint.id, { disabled: { at: new Date(at).toISOString(), reason } });
    // The alarm: an error line with a fixed message, which the stack's metric filter counts (docs/events.md).
    this.opts.log.error('event endpoint disabled', { endpoint: endpoint.id, caller: endpoint.caller, reason });
    for (const id of told) this.kick(id);
  }

  /**
   * One-shot (the AWS delivery function): every endpoint's due deliveries, endpoints side by side, until
   * none is due or `until` (epoch ms) comes. A slow endpoint takes its own time, no one else's.
   */
  async deliverDue(until: number, only?: string[]): Promise<void> {
    const ids = only ?? (await Promise.all(this.opts.callers().map((c) => this.store.listEndpoints(c)))).flat().map((e) => e.id);
    await Promise.all(
      ids.map(async (id) => {
        for (let pass = 0; pass < 100 && this.now() + this.settings.timeoutMs < until; pass++) {
          const done = await this.pass(id, true);
          if (!done.worked || !done.more) break;
        }
      }),
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.poll);
    for (const l of this.loops.values()) clearTimeout(l.timer);
    await Promise.all([...this.loops.values()].map((l) => l.running));
    await this.dispatcher.close().catch(() => undefined);
  }
}

/** Offered deliveries left to the next scan: the next due time is read again (they are due, and the rest of a stopped batch with them). */
function dropOffered(loop: Loop): void {
  loop.offered.clear();
  loop.scan = true;
  loop.nextDue = null;
}

function remember(loop: Loop, eventId: string): void {
  loop.sent.delete(eventId);
  loop.sent.add(eventId);
  // A Set iterates in insertion order: the first is the oldest.
  if (loop.sent.size > SENT_REMEMBERED) loop.sent.delete(loop.sent.values().next().value as string);
}

async function readSome(body: AsyncIterable<Buffer> & { destroy?: () => void }, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(chunk);
    size += chunk.length;
    if (size >= limit) break;
  }
  body.destroy?.();
  return Buffer.concat(chunks).subarray(0, limit).toString('utf8');
}

/** A short fingerprint of a secret, for listings (never the secret). */
export function secretHint(secret: string): string {
  return `whsec_…${createHash('sha256').update(secret).digest('hex').slice(0, 6)}`;
}
