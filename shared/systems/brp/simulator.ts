import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  answerFaultsRequest,
  answerLimiterRequest,
  FaultPlan,
  listenLoopback,
  readBody,
  retryAfterSeconds,
  SandboxRateLimit,
  sendJson,
  type Fault,
  type LimiterKind,
  type LimiterSettings,
  type RunningServer,
} from '../sandbox.js';

export type BrpStep = 'order' | 'item' | 'receipt' | 'getorder';

export interface BrpSandboxOptions {
  apiKey?: string;
  username?: string;
  password?: string;
  /** productId → price in öre and type. */
  products?: Record<number, { price: number; type: 'vara' | 'service' }>;
  /** API calls per second, every step together. */
  ratePerSecond?: number;
  /** How calls past the rate are refused (default `rolling`, the strict one). */
  limiter?: LimiterKind;
  /** The rate limit's clock (epoch ms): tests freeze it to place calls exactly inside or outside a window. */
  rateClock?: () => number;
  faults?: FaultPlan;
  hangMs?: number;
  faultWaitSeconds?: number;
}

interface Order {
  id: number;
  businessunitid: number;
  personid?: number;
  items: { id: number; productid: number; quantity: number; price: number; startdate?: string; starttime?: string; resourceid?: number }[];
  receiptid?: number;
  status: 'open' | 'paid';
}

export interface BrpSandboxStats {
  requests: number;
  ordersCreated: number;
  itemsAdded: number;
  receiptsCreated: number;
  rateLimited: number;
  /** The most calls the limiter accepted in any rolling 1,000 ms. */
  maxInAnyWindow: number;
}

function toXml(name: string, value: unknown): string {
  if (Array.isArray(value)) return `<${name}>${value.map((v) => toXml(name.replace(/s$/, ''), v)).join('')}</${name}>`;
  if (value && typeof value === 'object') return `<${name}>${Object.entries(value).map(([k, v]) => toXml(k, v)).join('')}</${name}>`;
  const text = String(value ?? '').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  return `<${name}>${text}</${name}>`;
}

/**
 * A sandbox of BRP API2's sale flow (seed 002): orders, order rows and service bookings answering
 * with `lefttopay`, receipts with a payment, `.json` and `.xml` suffixes, `apikey` on every call,
 * Basic auth on writes, errors as `{errors: [{code, message, debuginfo}]}`, a rate limit and faults
 * per step.
 */
export class BrpSandbox {
  readonly faults: FaultPlan;
  readonly options: Required<Omit<BrpSandboxOptions, 'faults'>>;
  readonly orders = new Map<number, Order>();
  readonly receipts = new Map<number, { id: number; orderid: number; totalamount: number; paymentmethodid: number; transactionid: string }>();
  stats: BrpSandboxStats = { requests: 0, ordersCreated: 0, itemsAdded: 0, receiptsCreated: 0, rateLimited: 0, maxInAnyWindow: 0 };
  private readonly stepFaults: Record<BrpStep, Fault[]> = { order: [], item: [], receipt: [], getorder: [] };
  private readonly booked = new Set<string>();
  private nextId = 1000;
  private readonly rate: SandboxRateLimit;
  private server: RunningServer | undefined;

  constructor(opts: BrpSandboxOptions = {}) {
    this.options = {
      apiKey: opts.apiKey ?? 'sandbox-brp-apikey',
      username: opts.username ?? 'paybridge',
      password: opts.password ?? 'sandbox-brp-password',
      products: opts.products ?? { 10: { price: 15_000, type: 'vara' }, 11: { price: 5_000, type: 'vara' }, 20: { price: 30_000, type: 'service' } },
      ratePerSecond: opts.ratePerSecond ?? 20,
      limiter: opts.limiter ?? 'rolling',
      rateClock: opts.rateClock ?? Date.now,
      hangMs: opts.hangMs ?? 20_000,
      faultWaitSeconds: opts.faultWaitSeconds ?? 5,
    };
    this.faults = opts.faults ?? new FaultPlan();
    this.rate = new SandboxRateLimit(this.options.limiter, this.options.ratePerSecond, this.options.rateClock);
  }

  get url(): string {
    if (!this.server) throw new Error('BRP sandbox is not started');
    return `${this.server.url}/brponline/api/ver2/`;
  }

  async start(port = 0): Promise<this> {
    this.server = await listenLoopback((req, res) => {
      this.route(req, res).catch((err: Error) => {
        if (!res.headersSent) sendJson(res, 500, { errors: [{ code: 'INTERNAL', message: err.message }] });
      });
    }, port);
    return this;
  }

  async close(): Promise<void> {
    await this.server?.close();
    this.server = undefined;
  }

  /** The next call of `step` meets `fault`. */
  failNext(step: BrpStep, ...faults: Fault[]): void {
    this.stepFaults[step].push(...faults);
  }

  /** Switches the limiter (and rate) at run time; throws LimiterSettingsError for impossible settings. */
  setLimiter(kind: LimiterKind, ratePerSecond = this.options.ratePerSecond): LimiterSettings {
    const settings = this.rate.set(kind, ratePerSecond);
    this.options.limiter = settings.kind;
    this.options.ratePerSecond = settings.ratePerSecond;
    return settings;
  }

  clearFaults(): void {
    for (const k of Object.keys(this.stepFaults) as BrpStep[]) this.stepFaults[k].length = 0;
    this.faults.clear();
  }

  lefttopay(order: Order): number {
    return order.status === 'paid' ? 0 : order.items.reduce((sum, i) => sum + i.price * i.quantity, 0);
  }

  private view(order: Order) {
    return { id: order.id, businessunitid: order.businessunitid, personid: order.personid ?? null, status: order.status, lefttopay: this.lefttopay(order), items: order.items, receiptid: order.receiptid ?? null };
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sandbox');
    const body = await readBody(req);
    // Control routes answer at the root and under the API's base URL, which is what `npm start` records.
    const control = url.pathname.replace(/^\/brponline\/api\/ver2(?=\/__sandbox\/)/, '');
    if (control === '/__sandbox/stats' && req.method === 'GET') return sendJson(res, 200, { ...this.stats, limiter: this.rate.settings });
    if (control === '/__sandbox/limiter' && req.method === 'POST') return answerLimiterRequest(body, res, this.rate.settings, (kind, rps) => this.setLimiter(kind, rps));
    if (control === '/__sandbox/faults' && req.method === 'POST') return answerFaultsRequest(body, res, this.faults);
    const m = /^\/brponline\/api\/ver2\/(.+)\.(json|xml)$/.exec(url.pathname);
    if (!m?.[1]) return sendJson(res, 404, { errors: [{ code: 'NOT_FOUND', message: 'Unknown resource', debuginfo: url.pathname }] });
    const [, path, format] = m as unknown as [string, string, 'json' | 'xml'];
    const form = new URLSearchParams(body);
    const send = (status: number, payload: unknown, root: string) => {
      if (format === 'xml') {
        res.writeHead(status, { 'content-type': 'application/xml; charset=utf-8' });
        return void res.end(`<?xml version="1.0" encoding="UTF-8"?>${toXml(root, payload)}`);
      }
      return sendJson(res, status, payload);
    };
    const fail = (status: number, code: string, message: string, debuginfo = '') => send(status, { errors: [{ code, message, debuginfo }] }, 'errors');
    this.stats.requests++;

    if ((url.searchParams.get('apikey') ?? form.get('apikey')) !== this.options.apiKey) return fail(401, 'INVALID_APIKEY', 'apikey saknas eller är ogiltig');
    if (req.method === 'POST') {
      const expected = `Basic ${Buffer.from(`${this.options.username}:${this.options.password}`).toString('base64')}`;
      if (req.headers.authorization !== expected) return fail(401, 'NOT_AUTHENTICATED', 'Anropet kräver inloggad användare (Basic)');
    }
    const step: BrpStep | undefined =
      req.method === 'POST' && path === 'orders' ? 'order' : req.method === 'POST' && /^orders\/\d+\/items$/.test(path) ? 'item' : req.method === 'POST' && path === 'receipts' ? 'receipt' : req.method === 'GET' && /^orders\/\d+$/.test(path) ? 'getorder' : undefined;
    const fault = (step ? this.stepFaults[step].shift() : undefined) ?? this.faults.next();
    if (fault === 'reset-before') return void req.socket.destroy();
    if (fault === '401' || fault === '403') return fail(Number(fault), 'NOT_AUTHORIZED', 'Behörighet saknas');
    const slot = fault === '429' ? { ok: false as const, waitMs: this.options.faultWaitSeconds * 1000 } : this.rate.take();
    if (!slot.ok) {
      this.stats.rateLimited++;
      res.setHeader('retry-after', String(retryAfterSeconds(slot.waitMs)));
      return fail(429, 'TOO_MANY_REQUESTS', 'För många anrop');
    }
    this.stats.maxInAnyWindow = this.rate.maxInAnyWindow;
    if (fault === '503') return fail(503, 'UNAVAILABLE', 'Tjänsten är inte tillgänglig');
    const after = (ok: () => void) => {
      if (fault === '500' || fault === '502' || fault === '504') return fail(Number(fault), 'INTERNAL', 'Internt fel');
      if (fault === 'reset-after') return void req.socket.destroy();
      if (fault === 'hang-after') return void setTimeout(() => req.socket.destroy(), this.options.hangMs).unref();
      return ok();
    };

    if (step === 'order') {
      const order: Order = { id: this.nextId++, businessunitid: Number(form.get('businessunitid')), items: [], status: 'open', ...(form.get('personid') ? { personid: Number(form.get('personid')) } : {}) };
      if (!order.businessunitid) return fail(400, 'MISSING_BUSINESSUNIT', 'businessunitid saknas');
      this.orders.set(order.id, order);
      this.stats.ordersCreated++;
      return after(() => send(201, { order: this.view(order) }, 'order'));
    }
    if (step === 'item') {
      const order = this.orders.get(Number(path.split('/')[1]));
      if (!order) return fail(404, 'ORDER_NOT_FOUND', 'Ordern finns inte');
      if (order.status === 'paid') return fail(400, 'ORDER_CLOSED', 'Ordern är redan betald');
      const productid = Number(form.get('productid'));
      const product = this.options.products[productid];
      if (!product) return fail(404, 'PRODUCT_NOT_FOUND', 'Produkten finns inte', `productid=${productid}`);
      const quantity = Number(form.get('quantity') ?? 1);
      const booking = form.get('startdate') ? { startdate: form.get('startdate') as string, starttime: form.get('starttime') as string, resourceid: Number(form.get('resourceid')) } : undefined;
      if (product.type === 'service' && !booking) return fail(400, 'BOOKING_REQUIRED', 'Tjänsten kräver starttid och resurs');
      if (booking) {
        const slotKey = `${booking.resourceid}@${booking.startdate}T${booking.starttime}`;
        if (this.booked.has(slotKey)) return fail(409, 'TIME_NOT_AVAILABLE', 'Tiden är inte ledig', slotKey);
        this.booked.add(slotKey);
      }
      const item = { id: this.nextId++, productid, quantity, price: product.price, ...booking };
      order.items.push(item);
      this.stats.itemsAdded++;
      return after(() => send(201, { orderitem: item, lefttopay: this.lefttopay(order) }, 'orderitem'));
    }
    if (step === 'getorder') {
      const order = this.orders.get(Number(path.split('/')[1]));
      if (!order) return fail(404, 'ORDER_NOT_FOUND', 'Ordern finns inte');
      return after(() => send(200, { order: this.view(order) }, 'order'));
    }
    if (step === 'receipt') {
      const order = this.orders.get(Number(form.get('orderid')));
      if (!order) return fail(404, 'ORDER_NOT_FOUND', 'Ordern finns inte');
      if (order.status === 'paid') return fail(400, 'ORDER_ALREADY_PAID', 'Ordern är redan betald');
      const total = Number(form.get('payment.totalamount'));
      if (total !== this.lefttopay(order)) return fail(400, 'PART_PAYMENT_NOT_SUPPORTED', 'Delbetalning stöds inte', `lefttopay=${this.lefttopay(order)} totalamount=${total}`);
      const receipt = { id: this.nextId++, orderid: order.id, totalamount: total, paymentmethodid: Number(form.get('payment.paymentmethodid')), transactionid: form.get('payment.transactionid') ?? '' };
      this.receipts.set(receipt.id, receipt);
      order.status = 'paid';
      order.receiptid = receipt.id;
      this.stats.receiptsCreated++;
      return after(() => send(201, { receipt }, 'receipt'));
    }
    if (req.method === 'GET' && /^receipts\/\d+$/.test(path)) {
      const receipt = this.receipts.get(Number(path.split('/')[1]));
      return receipt ? send(200, { receipt }, 'receipt') : fail(404, 'RECEIPT_NOT_FOUND', 'Kvittot finns inte');
    }
    return fail(404, 'NOT_FOUND', 'Unknown resource', path);
  }
}
