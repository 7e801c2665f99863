import type { Dispatcher } from 'undici';
import type { Outcome } from '../../core/types.js';
import { observe } from '../http.js';
import { classifyBrp } from './errors.js';

export interface BrpSettings {
  /** APIURL, per customer, e.g. https://<customer>.brpsystems.com/brponline/api/ver2/ */
  baseUrl: string;
  apiKey: string;
  /** Basic auth for calls bound to a user (writes). */
  username?: string | undefined;
  password?: string | undefined;
}

export interface BrpOrderItem {
  id: number;
  productid: number;
  quantity?: number;
  startdate?: string;
  starttime?: string;
  resourceid?: number;
}

export interface BrpOrder {
  id: number;
  lefttopay: number;
  items: BrpOrderItem[];
  receiptid?: number;
  status?: string;
}

export type Step<T> = { ok: true; value: T } | { ok: false; outcome: Outcome };

const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : undefined);

/** BRP API2 over JSON (`.json` suffix), `apikey` on every call, Basic auth on writes (seed 002). */
export class BrpClient {
  constructor(
    private readonly settings: BrpSettings,
    private readonly dispatcher: Dispatcher,
    private readonly clock: () => number,
    private readonly signal?: AbortSignal,
  ) {}

  /** The same client, every call of which is bound by one attempt's deadline. */
  bound(signal: AbortSignal): BrpClient {
    return new BrpClient(this.settings, this.dispatcher, this.clock, signal);
  }

  private url(path: string, query?: URLSearchParams): string {
    const base = this.settings.baseUrl.endsWith('/') ? this.settings.baseUrl : `${this.settings.baseUrl}/`;
    const q = new URLSearchParams(query);
    q.set('apikey', this.settings.apiKey);
    return `${new URL(`${path}.json`, base)}?${q}`;
  }

  private auth(): Record<string, string> {
    const { username, password } = this.settings;
    return username ? { authorization: `Basic ${Buffer.from(`${username}:${password ?? ''}`).toString('base64')}` } : {};
  }

  private async call(method: 'GET' | 'POST', path: string, form?: Record<string, string | number | undefined>): Promise<Step<Record<string, unknown>>> {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(form ?? {})) if (v !== undefined) params.set(k, String(v));
    if (method === 'POST') params.set('apikey', this.settings.apiKey);
    const obs = await observe(this.dispatcher, {
      method,
      url: this.url(path),
      headers: {
        accept: 'application/json',
        ...(method === 'POST' ? { 'content-type': 'application/x-www-form-urlencoded', ...this.auth() } : {}),
      },
      ...(method === 'POST' ? { body: params.toString() } : {}),
      signal: this.signal,
    });
    const outcome = classifyBrp(obs, this.clock());
    if (outcome.type !== 'posted') return { ok: false, outcome };
    const body = obs.kind === 'response' && obs.body && typeof obs.body === 'object' ? (obs.body as Record<string, unknown>) : {};
    return { ok: true, value: body };
  }

  private malformed(what: string): Step<never> {
    // The call succeeded but its answer cannot be read: it may have taken effect.
    return { ok: false, outcome: { type: 'ambiguous', message: `BRP answered ${what} without the expected id` } };
  }

  async createOrder(businessUnitId: number, personId?: number): Promise<Step<{ orderId: number }>> {
    const r = await this.call('POST', 'orders', { businessunitid: businessUnitId, personid: personId });
    if (!r.ok) return r;
    const order = (r.value.order ?? r.value) as Record<string, unknown>;
    const orderId = num(order.id ?? order.orderid);
    return orderId === undefined ? this.malformed('POST orders') : { ok: true, value: { orderId } };
  }

  async addItem(
    orderId: number,
    item: { productId: number; quantity: number; startDate?: string; startTime?: string; resourceId?: number },
  ): Promise<Step<{ itemId: number; leftToPay?: number }>> {
    const r = await this.call('POST', `orders/${orderId}/items`, {
      productid: item.productId,
      quantity: item.quantity,
      startdate: item.startDate,
      starttime: item.startTime,
      resourceid: item.resourceId,
    });
    if (!r.ok) return r;
    const row = (r.value.orderitem ?? r.value.item ?? r.value) as Record<string, unknown>;
    const itemId = num(row.id);
    const leftToPay = num(r.value.lefttopay ?? row.lefttopay);
    return itemId === undefined ? this.malformed(`POST orders/${orderId}/items`) : { ok: true, value: { itemId, ...(leftToPay !== undefined ? { leftToPay } : {}) } };
  }

  async getOrder(orderId: number): Promise<Step<BrpOrder>> {
    const r = await this.call('GET', `orders/${orderId}`);
    if (!r.ok) return r;
    const o = (r.value.order ?? r.value) as Record<string, unknown>;
    const lefttopay = num(o.lefttopay);
    if (lefttopay === undefined) return { ok: false, outcome: { type: 'retryable', message: `BRP answered GET orders/${orderId} without lefttopay` } };
    const items = (Array.isArray(o.items) ? o.items : Array.isArray(o.orderitems) ? o.orderitems : []) as BrpOrderItem[];
    const receiptid = num(o.receiptid);
    return { ok: true, value: { id: orderId, lefttopay, items, ...(receiptid !== undefined ? { receiptid } : {}), ...(typeof o.status === 'string' ? { status: o.status } : {}) } };
  }

  async createReceipt(orderId: number, payment: { amount: number; paymentMethodId: number; transactionId: string }): Promise<Step<{ receiptId: number }>> {
    const r = await this.call('POST', 'receipts', {
      orderid: orderId,
      'payment.totalamount': payment.amount,
      'payment.paymentmethodid': payment.paymentMethodId,
      'payment.transactionid': payment.transactionId,
    });
    if (!r.ok) return r;
    const receipt = (r.value.receipt ?? r.value) as Record<string, unknown>;
    const receiptId = num(receipt.id ?? receipt.receiptid);
    return receiptId === undefined ? this.malformed('POST receipts') : { ok: true, value: { receiptId } };
  }

  async getReceipt(receiptId: number): Promise<Step<Record<string, unknown>>> {
    const r = await this.call('GET', `receipts/${receiptId}`);
    return r.ok ? { ok: true, value: (r.value.receipt ?? r.value) as Record<string, unknown> } : r;
  }
}
