import type { Outcome, PaymentRecord } from '../../core/types.js';
import { sharedDispatcher } from '../http.js';
import { fieldErrors, validationProblem } from '../../http/problem.js';
import { moduleFactory, requireConfig, type AttemptContext, type InboundRequest, type ReconcileResult, type SystemModule } from '../types.js';
import { BrpClient, type BrpOrderItem } from './client.js';
import { BRP, brpDescription } from './describe.js';
import { checkUnsupported, saleSchema, type Sale } from './schema.js';

export { BRP } from './describe.js';

/** Progress of one sale, checkpointed after each downstream step (issue 4). */
export interface BrpCheckpoints {
  orderRequested?: boolean;
  orderId?: number;
  /** Index of the line (rows, then bookings) → BRP order item id. */
  items?: Record<string, number>;
  receiptRequested?: boolean;
  receiptId?: number;
}

interface Line {
  productId: number;
  quantity: number;
  startDate?: string;
  startTime?: string;
  resourceId?: number;
}

function linesOf(sale: Sale): Line[] {
  return [...sale.rows, ...sale.bookings.map((b) => ({ ...b, quantity: 1 }))];
}

/** An order item that is the BRP side of `line`. */
function matches(item: BrpOrderItem, line: Line): boolean {
  return (
    Number(item.productid) === line.productId &&
    (line.startDate === undefined || (item.startdate === line.startDate && item.starttime === line.startTime && Number(item.resourceid) === line.resourceId))
  );
}

function mismatch(leftToPay: number, amount: number): Outcome {
  return {
    type: 'rejected',
    code: 'LEFTTOPAY_MISMATCH',
    message: `BRP says ${leftToPay} öre is left to pay on the order, the payment is ${amount} öre. BRP does not support part payment, so nothing was paid; the order stays open`,
  };
}

export const brpModule = moduleFactory(BRP, (config, dispatcher = sharedDispatcher(), clock = Date.now): SystemModule => {
  let client: BrpClient | undefined;
  const getClient = () => {
    if (client) return client;
    const c = config.system(BRP);
    requireConfig(c, ['BRP_BASE_URL', 'BRP_API_KEY'] as const, 'BRP');
    client = new BrpClient({ baseUrl: c.BRP_BASE_URL as string, apiKey: c.BRP_API_KEY as string, username: c.BRP_USERNAME, password: c.BRP_PASSWORD }, dispatcher, clock);
    return client;
  };

  /** Runs the remaining steps from the last checkpoint. Each step is checkpointed before the next one. */
  async function post(request: Record<string, unknown>, ctx: AttemptContext): Promise<Outcome> {
    const sale = request as unknown as Sale;
    const brp = getClient().bound(ctx.signal);
    const cp = { ...(ctx.record.checkpoints as BrpCheckpoints) };
    if (cp.orderId === undefined) {
      if (cp.orderRequested) return { type: 'ambiguous', message: 'an earlier POST orders may have created an order whose id was never received' };
      await ctx.checkpoint({ orderRequested: true });
      const order = await brp.createOrder(sale.businessUnitId, 'personId' in sale.customer ? sale.customer.personId : undefined);
      if (!order.ok) {
        // Definitely not created (refused, rate limited, not sent): the marker goes, so a retry may create it.
        if (order.outcome.type !== 'ambiguous') await ctx.checkpoint({ orderRequested: false });
        return order.outcome;
      }
      cp.orderId = order.value.orderId;
      await ctx.checkpoint({ orderId: cp.orderId });
    }
    const orderId = cp.orderId;
    const items: Record<string, number> = { ...cp.items };
    const lines = linesOf(sale);
    for (const [i, line] of lines.entries()) {
      if (items[i] !== undefined) continue;
      const added = await brp.addItem(orderId, line);
      if (!added.ok) return added.outcome;
      items[i] = added.value.itemId;
      await ctx.checkpoint({ items });
    }
    if (cp.receiptId === undefined) {
      if (cp.receiptRequested) return { type: 'ambiguous', message: 'an earlier POST receipts may have paid the order' };
      const order = await brp.getOrder(orderId);
      if (!order.ok) return order.outcome;
      if (order.value.lefttopay !== sale.payment.amount) return mismatch(order.value.lefttopay, sale.payment.amount);
      await ctx.checkpoint({ receiptRequested: true });
      const receipt = await brp.createReceipt(orderId, { amount: sale.payment.amount, paymentMethodId: sale.payment.paymentMethodId, transactionId: sale.externalId });
      if (!receipt.ok) {
        if (receipt.outcome.type !== 'ambiguous') await ctx.checkpoint({ receiptRequested: false });
        return receipt.outcome;
      }
      cp.receiptId = receipt.value.receiptId;
      await ctx.checkpoint({ receiptId: cp.receiptId });
    }
    const shown = await brp.getReceipt(cp.receiptId);
    // The receipt exists either way; failing to read it back does not undo the payment.
    return { type: 'posted', httpStatus: 200, body: { orderId, receiptId: cp.receiptId, ...(shown.ok ? { receipt: shown.value } : {}) } };
  }

  /**
   * After an ambiguous step or a dead worker: read the order. Rows BRP has but the record lacks are
   * adopted as checkpoints; a paid order means the receipt was made. Nothing is sent from here.
   */
  async function reconcile(record: PaymentRecord, ctx: AttemptContext): Promise<ReconcileResult> {
    const sale = record.request as unknown as Sale;
    const cp = record.checkpoints as BrpCheckpoints;
    if (cp.receiptId !== undefined) return { type: 'found', body: { orderId: cp.orderId, receiptId: cp.receiptId } };
    if (cp.orderId === undefined) {
      return cp.orderRequested
        ? { type: 'unknowable', message: `an order may have been created in business unit ${sale.businessUnitId} but its id never arrived, and BRP orders cannot be looked up by our key: check for an open order of this sale before resolving` }
        : { type: 'absent' };
    }
    const order = await getClient().bound(ctx.signal).getOrder(cp.orderId);
    if (!order.ok) return { type: 'inconclusive', message: 'outcome' in order ? order.outcome.type : 'read failed' };
    if (cp.receiptRequested) {
      if (order.value.lefttopay === 0 || order.value.receiptid !== undefined || order.value.status === 'paid') {
        if (order.value.receiptid !== undefined) await ctx.checkpoint({ receiptId: order.value.receiptid });
        return { type: 'found', body: { orderId: cp.orderId, receiptId: order.value.receiptid, order: order.value } };
      }
      await ctx.checkpoint({ receiptRequested: false });
    }
    const items: Record<string, number> = { ...cp.items };
    const claimed = new Set(Object.values(items));
    let adopted = false;
    for (const [i, line] of linesOf(sale).entries()) {
      if (items[i] !== undefined) continue;
      const found = order.value.items.find((it) => !claimed.has(Number(it.id)) && matches(it, line));
      if (!found) continue;
      items[i] = Number(found.id);
      claimed.add(Number(found.id));
      adopted = true;
    }
    if (adopted) await ctx.checkpoint({ items });
    return { type: 'absent' };
  }

  return {
    ...brpDescription(config),
    prepare: async () => {
      getClient();
      return undefined;
    },
    parse(input: InboundRequest) {
      checkUnsupported(input.body);
      const parsed = saleSchema.safeParse(input.body);
      if (!parsed.success) throw validationProblem(fieldErrors(parsed.error), 'sale');
      return { tenant: 'default', key: parsed.data.externalId, request: parsed.data as unknown as Record<string, unknown>, keyPointer: '#/externalId' };
    },
    post,
    reconcile,
  };
});
