import type { Outcome, PaymentRecord } from '../../shared/core/types.js';
import { ConfigError, type AttemptContext, type ReconcileResult, type SystemModule } from '../../shared/systems/types.js';
import type { Container, World } from './world.js';

/**
 * Doubles of the five downstreams, shaped like their modules (shared/systems/<system>/index.ts): the
 * same ambiguity policy, the same use of prepare, post, reconcile and checkpoints. Each keeps the
 * downstream's truth (NIF rows, BRP orders and receipts, Kontantanalys objects, Cambio notices, each
 * with the key and body version it came from) behind a read side that may lag, and answers with the
 * faults the scenario injects: 429, 401, a 500 after or before storing, a refused connection, a hang.
 */

export const SIM_SYSTEMS = ['cambio', 'nif-membership', 'nif', 'brp', 'kontantanalys'] as const;
export type SimSystem = (typeof SIM_SYSTEMS)[number];

/** What a caller sends: the key, the caller's own body version, an amount in öre, and whether the downstream accepts it. */
export interface SimRequest {
  key: string;
  v: number;
  amount: number;
  valid: boolean;
  /** Kontantanalys only: services can be found by externalId, templates cannot. */
  resource?: 'services' | 'templates';
}

export interface CallFaults {
  rateLimited: number;
  unauthorized: number;
  /** 500 after the downstream stored it. */
  ambiguousAfter: number;
  /** 500 before it stored anything (the caller cannot tell the two apart). */
  ambiguousBefore: number;
  /** Connection refused: provably not sent. */
  refused: number;
  /** No answer until the attempt's deadline; stored or not. */
  hang: number;
  /** A read (reconcile) that fails. */
  readError: number;
}

export const NO_CALL_FAULTS: CallFaults = { rateLimited: 0, unauthorized: 0, ambiguousAfter: 0, ambiguousBefore: 0, refused: 0, hang: 0, readError: 0 };

/** One thing the downstream holds because of us. */
export interface Effect {
  kind: 'row' | 'order' | 'receipt' | 'object' | 'notice' | 'update';
  key: string;
  v: number;
  at: number;
  id: number;
}

export interface Window {
  from: number;
  to: number;
}

type Call<T> = { ok: true; value: T } | { ok: false; outcome: Outcome };

interface Order {
  id: number;
  key: string;
  v: number;
  at: number;
  items: { id: number; price: number; at: number }[];
  receiptId?: number;
  receiptAt?: number;
}

export class Downstream {
  readonly effects: Effect[] = [];
  /** Keys of which some request reached the downstream (any answer but a definite "not done": refused, 401, 429). */
  readonly touched = new Set<string>();
  faults: CallFaults = NO_CALL_FAULTS;
  /** Reads see what was stored at least this long ago (NIF's read API, BRP's order, Kontantanalys' listing). */
  lagMs = 0;
  configBroken: Window[] = [];
  authBroken: Window[] = [];
  readonly orders = new Map<number, Order>();
  private ids = 1000;

  constructor(
    readonly system: SimSystem,
    private readonly world: World,
    /** How long a hung call takes to give up: the attempt's timeout. */
    private readonly hangMs: number,
  ) {}

  inWindow(windows: Window[]): boolean {
    const now = this.world.now;
    return windows.some((w) => w.from <= now && now < w.to);
  }

  checkConfig(): void {
    if (this.inWindow(this.configBroken)) throw new ConfigError(`${this.system} is not configured: set ${this.system.toUpperCase()}_BASE_URL`, [`${this.system.toUpperCase()}_BASE_URL`]);
  }

  nextId(): number {
    return ++this.ids;
  }

  record(kind: Effect['kind'], key: string, v: number): Effect {
    const e: Effect = { kind, key, v, at: this.world.now, id: this.nextId() };
    this.effects.push(e);
    this.world.log(`${this.system}`, () => `downstream stores ${kind} #${e.id} for ${key} (body v${v})`);
    return e;
  }

  /** Effects a read made now can see. */
  visible(kind: Effect['kind'], key: string): Effect[] {
    const horizon = this.world.now - this.lagMs;
    return this.effects.filter((e) => e.kind === kind && e.key === key && e.at <= horizon);
  }

  /**
   * One write call to the downstream: the faults decide, at the moment it completes, whether `apply`
   * happens and what the caller hears. `creates`: a call whose effect would be a duplicate if repeated.
   */
  call<T>(container: Container | undefined, label: string, key: string, apply: () => T, creates = true): Promise<Call<T>> {
    const w = this.world;
    const r = w.rng;
    const f = this.faults;
    const hang = r.chance(f.hang);
    const latency = hang ? this.hangMs : r.chance(0.05) ? r.int(500, 5_000) : r.int(5, 60);
    const applyIfDead = r.chance(0.5);
    return w.io(
      container,
      latency,
      (): Call<T> => {
        const say = (what: string) => w.log(this.system, () => `${label} ${key}: ${what}`);
        if (this.inWindow(this.authBroken) || r.chance(f.unauthorized)) {
          say('401 (after one token refresh)');
          return { ok: false, outcome: { type: 'auth', httpStatus: 401, message: 'simulated: 401 Unauthorized' } };
        }
        if (r.chance(f.refused)) {
          // Provably not sent either way: refused, or stopped on its socket past its send slot (leaveBy).
          if (r.chance(0.5)) {
            say('stopped on its socket past its slot (not sent)');
            return { ok: false, outcome: { type: 'retryable', late: true, message: 'simulated: past its send slot on the socket' } };
          }
          say('connection refused (not sent)');
          return { ok: false, outcome: { type: 'retryable', message: 'simulated: connection refused' } };
        }
        if (r.chance(f.rateLimited)) {
          say('429');
          return { ok: false, outcome: { type: 'rate_limited', httpStatus: 429, waitMs: r.int(1, 30) * 1000, message: 'simulated: 429 Too Many Requests' } };
        }
        // It reached the downstream: from here on the caller cannot know it was not stored.
        this.touched.add(key);
        if (hang) {
          const stored = r.chance(0.5);
          if (stored) apply();
          say(`hung until the deadline (${stored ? 'stored' : 'not stored'})`);
          return { ok: false, outcome: { type: 'ambiguous', message: 'simulated: no answer before the deadline' } };
        }
        if (r.chance(f.ambiguousBefore)) {
          say('500 before storing');
          return { ok: false, outcome: { type: 'ambiguous', httpStatus: 500, message: 'simulated: 500 Internal Server Error' } };
        }
        const value = apply();
        if (r.chance(f.ambiguousAfter)) {
          say('500 after storing');
          return { ok: false, outcome: { type: 'ambiguous', httpStatus: 500, message: 'simulated: 500 Internal Server Error' } };
        }
        return { ok: true, value };
      },
      applyIfDead,
    );
  }

  /** One read: fails now and then; sees the lagging side. */
  read<T>(container: Container | undefined, look: () => T): Promise<Call<T>> {
    const w = this.world;
    return w.io(container, w.rng.int(5, 40), (): Call<T> => {
      if (w.rng.chance(this.faults.readError)) return { ok: false, outcome: { type: 'retryable', httpStatus: 503, message: 'simulated: read failed' } };
      return { ok: true, value: look() };
    });
  }
}

function rejectedIfInvalid(req: SimRequest): Outcome | undefined {
  return req.valid ? undefined : { type: 'rejected', httpStatus: 422, code: 'VALIDATION', message: 'simulated: the downstream refused the data' };
}

/** The parts every double shares: name, policy, description, parse. */
function base(system: SimSystem, policy: SystemModule['ambiguity'], ds: Downstream): Pick<SystemModule, 'name' | 'ambiguity' | 'maxPerSecond' | 'routeKey' | 'publicRequest' | 'parse'> {
  return {
    name: system,
    ambiguity: policy,
    maxPerSecond: () => {
      ds.checkConfig();
      return 1000;
    },
    routeKey: (key) => ({ tenant: 'default', key }),
    publicRequest: (r) => r,
    parse: ({ body }) => {
      const req = body as SimRequest;
      return { tenant: 'default', key: req.key, request: { ...req } as unknown as Record<string, unknown> };
    },
  };
}

/** A token endpoint: refused credentials hold the payment (auth), a broken configuration throws. */
function tokenPrepare(ds: Downstream, world: World) {
  return async (): Promise<Outcome | undefined> => {
    ds.checkConfig();
    if (ds.inWindow(ds.authBroken)) {
      world.log(ds.system, () => 'token endpoint: credentials refused');
      return { type: 'auth', httpStatus: 401, message: 'simulated: token request refused' };
    }
    return undefined;
  };
}

/** Cambio: PAID is a state on the contact; re-sending it is harmless (policy resend). */
function cambio(ds: Downstream, world: World, container: Container | undefined): SystemModule {
  return {
    ...base('cambio', 'resend', ds),
    prepare: tokenPrepare(ds, world),
    async post(request, ctx) {
      const req = request as unknown as SimRequest;
      const bad = rejectedIfInvalid(req);
      const r = await ds.call(container, 'POST paymentnotice', req.key, () => (bad ? undefined : ds.record('notice', req.key, req.v)), false);
      if (!r.ok) return r.outcome;
      return bad ?? { type: 'posted', httpStatus: 200, body: { status: 'PAID' } };
    },
  };
}

/** NIF first generation: a row per POST; the read API finds it by externalReference (policy reconcile). */
function nifMembership(ds: Downstream, world: World, container: Container | undefined): SystemModule {
  return {
    ...base('nif-membership', 'reconcile', ds),
    // Club tokens are configuration: nothing to fetch, but a broken configuration throws.
    prepare: async () => {
      ds.checkConfig();
      return undefined;
    },
    async post(request, ctx) {
      const req = request as unknown as SimRequest;
      const bad = rejectedIfInvalid(req);
      if (bad) {
        const r = await ds.call(container, 'POST Addpaymentdetail', req.key, () => undefined, false);
        return r.ok ? bad : r.outcome;
      }
      const r = await ds.call(container, 'POST Addpaymentdetail', req.key, () => ds.record('row', req.key, req.v));
      return r.ok ? { type: 'posted', httpStatus: 200, body: { paymentId: r.value.id } } : r.outcome;
    },
    async reconcile(record, ctx) {
      const req = record.request as unknown as SimRequest;
      const r = await ds.read(container, () => ds.visible('row', req.key));
      if (!r.ok) return { type: 'inconclusive', message: r.outcome.type === 'retryable' ? r.outcome.message : 'read failed' };
      world.log('nif-membership', () => `GET paymentdetails ${req.key}: ${r.value.length} row(s) visible`);
      return r.value.length > 0 ? { type: 'found', body: { paymentId: r.value[0]?.id } } : { type: 'absent' };
    },
  };
}

/** NIF second generation: nothing to read back by (policy park). */
function nifGen2(ds: Downstream, world: World, container: Container | undefined): SystemModule {
  return {
    ...base('nif', 'park', ds),
    prepare: tokenPrepare(ds, world),
    async post(request, ctx) {
      const req = request as unknown as SimRequest;
      const bad = rejectedIfInvalid(req);
      if (bad) {
        const r = await ds.call(container, 'POST payment/Addpaymentdetail', req.key, () => undefined, false);
        return r.ok ? bad : r.outcome;
      }
      const r = await ds.call(container, 'POST payment/Addpaymentdetail', req.key, () => ds.record('row', req.key, req.v));
      return r.ok ? { type: 'posted', httpStatus: 200, body: { paymentId: r.value.id } } : r.outcome;
    },
  };
}

interface BrpCp {
  orderRequested?: boolean;
  orderId?: number;
  items?: Record<string, number>;
  receiptRequested?: boolean;
  receiptId?: number;
}

/** BRP: order, one row, receipt, each step checkpointed; reconcile reads the order (shared/systems/brp/index.ts). */
function brp(ds: Downstream, world: World, container: Container | undefined): SystemModule {
  const orderView = (id: number) => {
    const o = ds.orders.get(id);
    const horizon = world.now - ds.lagMs;
    if (!o || o.at > horizon) return undefined;
    const items = o.items.filter((i) => i.at <= horizon);
    const paid = o.receiptId !== undefined && (o.receiptAt ?? 0) <= horizon;
    const total = items.reduce((s, i) => s + i.price, 0);
    return { items, receiptid: paid ? o.receiptId : undefined, lefttopay: paid ? 0 : total };
  };
  async function post(request: Record<string, unknown>, ctx: AttemptContext): Promise<Outcome> {
    const sale = request as unknown as SimRequest;
    const c = container;
    const cp = { ...(ctx.record.checkpoints as BrpCp) };
    if (cp.orderId === undefined) {
      if (cp.orderRequested) return { type: 'ambiguous', message: 'an earlier POST orders may have created an order whose id was never received' };
      await ctx.checkpoint({ orderRequested: true });
      const order = await ds.call(c, 'POST orders', sale.key, () => {
        const e = ds.record('order', sale.key, sale.v);
        ds.orders.set(e.id, { id: e.id, key: sale.key, v: sale.v, at: world.now, items: [] });
        return e.id;
      });
      if (!order.ok) {
        if (order.outcome.type !== 'ambiguous') await ctx.checkpoint({ orderRequested: false });
        return order.outcome;
      }
      cp.orderId = order.value;
      await ctx.checkpoint({ orderId: cp.orderId });
    }
    const orderId = cp.orderId;
    const items: Record<string, number> = { ...cp.items };
    if (items[0] === undefined) {
      const bad = rejectedIfInvalid(sale);
      const added = await ds.call(
        c,
        'POST orders/items',
        sale.key,
        () => {
          if (bad) return undefined;
          const id = ds.nextId();
          ds.orders.get(orderId)?.items.push({ id, price: sale.amount, at: world.now });
          return id;
        },
        false,
      );
      if (!added.ok) return added.outcome;
      if (bad || added.value === undefined) return bad ?? { type: 'rejected', message: 'no item' };
      items[0] = added.value;
      await ctx.checkpoint({ items });
    }
    if (cp.receiptId === undefined) {
      if (cp.receiptRequested) return { type: 'ambiguous', message: 'an earlier POST receipts may have paid the order' };
      const order = await ds.read(c, () => orderView(orderId));
      if (!order.ok) return order.outcome;
      if (!order.value) return { type: 'retryable', message: 'simulated: order not readable yet' };
      if (order.value.lefttopay !== sale.amount) {
        return { type: 'rejected', code: 'LEFTTOPAY_MISMATCH', message: `BRP says ${order.value.lefttopay} öre is left to pay, the payment is ${sale.amount} öre` };
      }
      await ctx.checkpoint({ receiptRequested: true });
      const receipt = await ds.call(c, 'POST receipts', sale.key, () => {
        const e = ds.record('receipt', sale.key, sale.v);
        const o = ds.orders.get(orderId);
        if (o) {
          o.receiptId = e.id;
          o.receiptAt = world.now;
        }
        return e.id;
      });
      if (!receipt.ok) {
        if (receipt.outcome.type !== 'ambiguous') await ctx.checkpoint({ receiptRequested: false });
        return receipt.outcome;
      }
      cp.receiptId = receipt.value;
      await ctx.checkpoint({ receiptId: cp.receiptId });
    }
    return { type: 'posted', httpStatus: 200, body: { orderId, receiptId: cp.receiptId } };
  }
  async function reconcile(record: PaymentRecord, ctx: AttemptContext): Promise<ReconcileResult> {
    const cp = record.checkpoints as BrpCp;
    if (cp.receiptId !== undefined) return { type: 'found', body: { orderId: cp.orderId, receiptId: cp.receiptId } };
    if (cp.orderId === undefined) {
      return cp.orderRequested ? { type: 'unknowable', message: 'an order may have been created but its id never arrived' } : { type: 'absent' };
    }
    const orderId = cp.orderId;
    const order = await ds.read(container, () => orderView(orderId));
    if (!order.ok || !order.value) return { type: 'inconclusive', message: 'order read failed' };
    world.log('brp', () => `GET orders/${orderId}: lefttopay ${order.value?.lefttopay}, receipt ${order.value?.receiptid ?? 'none'}`);
    if (cp.receiptRequested) {
      if (order.value.lefttopay === 0 || order.value.receiptid !== undefined) {
        if (order.value.receiptid !== undefined) await ctx.checkpoint({ receiptId: order.value.receiptid });
        return { type: 'found', body: { orderId, receiptId: order.value.receiptid } };
      }
      await ctx.checkpoint({ receiptRequested: false });
    }
    const items: Record<string, number> = { ...cp.items };
    if (items[0] === undefined && order.value.items[0]) {
      items[0] = order.value.items[0].id;
      await ctx.checkpoint({ items });
    }
    return { type: 'absent' };
  }
  return {
    ...base('brp', 'reconcile', ds),
    prepare: async () => {
      ds.checkConfig();
      return undefined;
    },
    post,
    reconcile,
  };
}

interface KaCp {
  remoteId?: number;
  createRequested?: boolean;
  createAnsweredAt?: number;
}

/** Kontantanalys: create, then updates by the remote id kept in the checkpoints (shared/systems/kontantanalys/index.ts). */
function kontantanalys(ds: Downstream, world: World, container: Container | undefined): SystemModule {
  const createdSince = (record: PaymentRecord) => (record.checkpoints as KaCp).createAnsweredAt ?? Date.parse(record.updatedAt);
  /** Services carry our externalId and can be listed; templates carry nothing to find them by. */
  async function findCreated(req: SimRequest, c: Container | undefined, _since: number): Promise<{ found?: Effect } | { unknowable: string } | { inconclusive: string }> {
    if (req.resource !== 'services') return { unknowable: 'a template may have been created, and templates carry no externalId to find it by' };
    const r = await ds.read(c, () => ds.visible('object', req.key));
    if (!r.ok) return { inconclusive: 'listing failed' };
    return r.value[0] ? { found: r.value[0] } : {};
  }
  async function create(req: SimRequest, ctx: AttemptContext, c: Container | undefined): Promise<Outcome> {
    if ((ctx.record.checkpoints as KaCp).createRequested) {
      const earlier = await findCreated(req, c, createdSince(ctx.record));
      if ('unknowable' in earlier) return { type: 'ambiguous', message: earlier.unknowable };
      if ('inconclusive' in earlier) return { type: 'retryable', message: `could not check whether an earlier create took effect (${earlier.inconclusive})` };
      if (earlier.found) {
        await ctx.checkpoint({ remoteId: earlier.found.id, createRequested: false });
        return { type: 'posted', httpStatus: 200, body: { remoteId: earlier.found.id, action: 'created' } };
      }
      await ctx.checkpoint({ createRequested: false });
    }
    await ctx.checkpoint({ createRequested: true, createAnsweredAt: undefined });
    const bad = rejectedIfInvalid(req);
    const made = await ds.call(c, 'POST create', req.key, () => (bad ? undefined : ds.record('object', req.key, req.v)), !bad);
    if (!made.ok) {
      await ctx.checkpoint(made.outcome.type === 'ambiguous' ? { createAnsweredAt: world.now } : { createRequested: false });
      return made.outcome;
    }
    if (bad || !made.value) {
      await ctx.checkpoint({ createRequested: false });
      return bad ?? { type: 'rejected', message: 'refused' };
    }
    await ctx.checkpoint({ remoteId: made.value.id, createRequested: false });
    return { type: 'posted', httpStatus: 201, body: { remoteId: made.value.id, action: 'created' } };
  }
  return {
    ...base('kontantanalys', 'reconcile', ds),
    prepare: tokenPrepare(ds, world),
    async post(request, ctx) {
      const req = request as unknown as SimRequest;
      const c = container;
      const cp = ctx.record.checkpoints as KaCp;
      if (cp.remoteId !== undefined && !cp.createRequested) {
        const remoteId = cp.remoteId;
        const bad = rejectedIfInvalid(req);
        const up = await ds.call(c, `PATCH ${remoteId}`, req.key, () => (bad ? undefined : ds.record('update', req.key, req.v)), false);
        if (!up.ok) return up.outcome;
        return bad ?? { type: 'posted', httpStatus: 200, body: { remoteId, action: 'updated' } };
      }
      return create(req, ctx, c);
    },
    async reconcile(record, ctx) {
      const req = record.request as unknown as SimRequest;
      const cp = record.checkpoints as KaCp;
      if (!cp.createRequested) return { type: 'absent' };
      const earlier = await findCreated(req, container, createdSince(record));
      if ('unknowable' in earlier) return { type: 'unknowable', message: earlier.unknowable };
      if ('inconclusive' in earlier) return { type: 'inconclusive', message: earlier.inconclusive };
      if (!earlier.found) {
        await ctx.checkpoint({ createRequested: false });
        return { type: 'absent' };
      }
      await ctx.checkpoint({ remoteId: earlier.found.id, createRequested: false });
      return { type: 'found', body: { remoteId: earlier.found.id, action: 'created' } };
    },
  };
}

/** One container's modules: their calls die with it. */
export function simModules(world: World, downstreams: Map<SimSystem, Downstream>, container: Container | undefined): Map<string, SystemModule> {
  const ds = (s: SimSystem) => downstreams.get(s) as Downstream;
  return new Map<string, SystemModule>([
    ['cambio', cambio(ds('cambio'), world, container)],
    ['nif-membership', nifMembership(ds('nif-membership'), world, container)],
    ['nif', nifGen2(ds('nif'), world, container)],
    ['brp', brp(ds('brp'), world, container)],
    ['kontantanalys', kontantanalys(ds('kontantanalys'), world, container)],
  ]);
}
