import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { submit } from '../../shared/core/intake.js';
import { recordPk } from '../../shared/core/types.js';
import type { Stack } from '../../shared/local/stack.js';
import type { SystemModule } from '../../shared/systems/types.js';
import { never } from '../helpers/doubles.js';
import { call, eventually, queuedFirst, statusOf, testStack, waitForStatus } from '../helpers/stack.js';

// Long enough for a whole sale (order, three rows, receipt) on a loaded CI machine; a dead worker's lease
// still ends within the test's bounds.
const LEASE_MS = 2_500;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** 2 × product 10 (150 kr) + 1 × product 11 (50 kr) + a booking of service 20 (300 kr) = 650 kr. */
const sale = (externalId: string, change: Record<string, unknown> = {}) => ({
  externalId,
  businessUnitId: 3,
  customer: { personId: 4711 },
  rows: [
    { productId: 10, quantity: 2 },
    { productId: 11, quantity: 1 },
  ],
  bookings: [{ productId: 20, startDate: '2026-12-01', startTime: '18:00', resourceId: Number(externalId.replace(/\D/g, '') || 1) }],
  payment: { amount: 65_000, paymentMethodId: 1 },
  ...change,
});

describe('BRP sales: order, rows, bookings, receipt, resumable and never paid twice', () => {
  let stack: Stack;
  let dieAfter: ((patch: Record<string, unknown>) => boolean) | undefined;

  beforeAll(async () => {
    stack = await testStack({
      // A worker's attempt ends 1.5 s after its slot; 200 ms later an unfinished one is stranded.
      settings: { leaseMs: LEASE_MS, attemptTimeoutMs: 1_500, settleMarginMs: 200, reconcileDelayMs: 100 },
      // The worker function's timeout: an invocation stuck in a dead attempt ends, as in Lambda.
      queue: { invocationTimeoutMs: 3_000, visibilityTimeoutMs: 200 },
      brp: { ratePerSecond: 1000, faultWaitSeconds: 1 },
      modules: (built) => {
        const brp = built.get('brp') as SystemModule;
        return [
          {
            ...brp,
            post: (request, ctx) =>
              brp.post(request, {
                ...ctx,
                async checkpoint(patch) {
                  await ctx.checkpoint(patch);
                  if (dieAfter?.(patch)) {
                    dieAfter = undefined;
                    await never();
                  }
                },
              }),
          },
        ];
      },
    });
  });
  afterAll(async () => {
    await stack?.close();
  });
  /** Sweeps every 200 ms until the sale settles (bounded). */
  const sweepUntilSettled = (id: string) =>
    eventually(async () => {
      await stack.sweepNow();
      const r = await statusOf(stack, 'brp', id);
      return r && ['posted', 'unknown', 'failed'].includes(r.status) ? r : undefined;
    }, 25_000, 200);

  afterEach(() => {
    stack.brp!.clearFaults();
    dieAfter = undefined;
  });

  const counts = () => ({ ...stack.brp!.stats });
  const delta = (before: ReturnType<typeof counts>) => {
    const now = counts();
    return { orders: now.ordersCreated - before.ordersCreated, items: now.itemsAdded - before.itemsAdded, receipts: now.receiptsCreated - before.receiptsCreated };
  };

  it('a full sale: one order, three rows, one receipt carrying the externalId', async () => {
    const before = counts();
    const sent = await call(stack, 'POST', '/v1/brp/sales', sale('s-1'));
    // 202 when a busy machine queued the first attempt: the outcome is the same, a moment later.
    expect([201, 202]).toContain(sent.status);
    const r = { body: sent.status === 201 ? sent.body : await waitForStatus(stack, 'brp', 's-1', ['posted']) };
    expect(r.body.result.body).toMatchObject({ receipt: { totalamount: 65_000, paymentmethodid: 1, transactionid: 's-1' } });
    expect(r.body.checkpoints).toMatchObject({ orderId: expect.any(Number), receiptId: expect.any(Number) });
    expect(Object.keys(r.body.checkpoints.items)).toHaveLength(3);
    expect(delta(before)).toEqual({ orders: 1, items: 3, receipts: 1 });
    expect((await call(stack, 'POST', '/v1/brp/sales', sale('s-1'))).status).toBe(200);
    expect(delta(before)).toEqual({ orders: 1, items: 3, receipts: 1 });
  });

  it('a payment that differs from lefttopay is refused before the receipt, naming both amounts', async () => {
    const before = counts();
    const r = await call(stack, 'POST', '/v1/brp/sales', sale('s-2', { payment: { amount: 60_000, paymentMethodId: 1 } }));
    // A busy machine may queue the first attempt (202): the refusal is then the record's error.
    expect([422, 202]).toContain(r.status);
    const refusal = r.status === 422 ? { code: r.body.downstream.code, text: r.body.detail } : await waitForStatus(stack, 'brp', 's-2', ['failed']).then((rec) => ({ code: rec.error.code, text: rec.error.message }));
    expect(refusal.code).toBe('LEFTTOPAY_MISMATCH');
    expect(refusal.text).toContain('65000 öre is left to pay');
    expect(refusal.text).toContain('the payment is 60000 öre');
    expect(delta(before).receipts).toBe(0);
  });

  it.each([
    ['the order', (p: Record<string, unknown>) => 'orderId' in p],
    ['the first row', (p: Record<string, unknown>) => Object.keys((p.items as object | undefined) ?? {}).length === 1],
    ['the second row', (p: Record<string, unknown>) => Object.keys((p.items as object | undefined) ?? {}).length === 2],
    ['the booking', (p: Record<string, unknown>) => Object.keys((p.items as object | undefined) ?? {}).length === 3],
    ['the receipt', (p: Record<string, unknown>) => 'receiptId' in p],
  ])('a worker that dies after %s resumes from the checkpoint without duplicates', async (step, when) => {
    const id = `s-crash-${step.replace(/\W/g, '')}-${Math.random().toString(36).slice(2, 6)}`;
    const before = counts();
    dieAfter = when;
    const module = stack.deps.systems('brp') as SystemModule;
    void submit(stack.deps, module, module.parse({ body: sale(id, { bookings: [{ productId: 20, startDate: '2026-12-02', startTime: '09:00', resourceId: 100 + Math.floor(Math.random() * 1e6) }] }), headers: {} }), { owner: 'doomed', correlationId: id });
    // Bounded generously: on a loaded machine the doomed attempt may take seconds to reach its step, and a
    // case that gave up early would leave it running into the next case's counts.
    await eventually(async () => dieAfter === undefined, 15_000, 20);
    // The sweep, as its schedule would, until the dead attempt's deadline has passed and it is recovered.
    const rec = await sweepUntilSettled(id);
    expect(rec.status).toBe('posted');
    expect(delta(before)).toEqual({ orders: 1, items: 3, receipts: 1 });
    expect(rec.history.map((h: { event: string }) => h.event)).toContain('stranded');
  });

  it('a worker that dies between asking for an order and learning its id is parked as unknown, never given a second order', async () => {
    const before = counts();
    dieAfter = (p) => p.orderRequested === true;
    const module = stack.deps.systems('brp') as SystemModule;
    void submit(stack.deps, module, module.parse({ body: sale('s-40', { bookings: [] }), headers: {} }), { owner: 'doomed', correlationId: 's-40' });
    await eventually(async () => dieAfter === undefined, 5_000, 20);
    const rec = await sweepUntilSettled('s-40');
    expect(rec.status).toBe('unknown');
    expect(rec.error.message).toContain('check for an open order of this sale');
    expect(delta(before).orders).toBe(0);
  });

  it('a reset after BRP added a row is reconciled by reading the order: the row is adopted, not added again', async () => {
    const before = counts();
    stack.brp!.failNext('item', 'reset-after');
    const r = await call(stack, 'POST', '/v1/brp/sales', sale('s-41'));
    // Reconciling after the in-process attempt; queued on a busy machine (202, `retrying`), the worker's
    // row is lost the same way: the history tells the reconciliation either way.
    expect(r.status).toBe(202);
    if (!queuedFirst(r)) expect(r.body.status).toBe('reconciling');
    const rec = await waitForStatus(stack, 'brp', 's-41', ['posted']);
    expect(rec.history.map((h: { event: string }) => h.event)).toContain('reconciled');
    expect(delta(before)).toEqual({ orders: 1, items: 3, receipts: 1 });
  });

  it('a reset after BRP made the receipt is reconciled by reading the order: paid, no second receipt', async () => {
    const before = counts();
    stack.brp!.failNext('receipt', 'reset-after');
    const r = await call(stack, 'POST', '/v1/brp/sales', sale('s-42'));
    // Reconciling after the in-process attempt; queued on a busy machine (202, `retrying`), the worker's
    // receipt is lost the same way: found by reconciliation either way (the note below).
    expect(r.status).toBe(202);
    if (!queuedFirst(r)) expect(r.body.status).toBe('reconciling');
    const rec = await waitForStatus(stack, 'brp', 's-42', ['posted']);
    expect(rec.result.note).toBe('found downstream by reconciliation');
    expect(delta(before)).toEqual({ orders: 1, items: 3, receipts: 1 });
  });

  it('a 429 on a row step is retried through the queue and resumes where it stopped', async () => {
    const before = counts();
    stack.brp!.failNext('item', 'none', '429');
    const r = await call(stack, 'POST', '/v1/brp/sales', sale('s-43'));
    expect(r.status).toBe(202);
    const rec = await waitForStatus(stack, 'brp', 's-43', ['posted']);
    expect(rec.attempts).toBe(2);
    expect(delta(before)).toEqual({ orders: 1, items: 3, receipts: 1 });
  });

  it('100 concurrent deliveries of one sale make one order and one receipt', async () => {
    const before = counts();
    const replies = await Promise.all(Array.from({ length: 100 }, () => call(stack, 'POST', '/v1/brp/sales', sale('s-44'))));
    expect(replies.every((r) => [200, 201, 202].includes(r.status))).toBe(true);
    await waitForStatus(stack, 'brp', 's-44', ['posted']);
    expect(delta(before)).toEqual({ orders: 1, items: 3, receipts: 1 });
  });

  it('what BRP does not support is refused up front with 422; bad fields with 400; nothing sent', async () => {
    const before = counts();
    const partial = await call(stack, 'POST', '/v1/brp/sales', sale('s-50', { payment: { amount: 100, paymentMethodId: 1, partial: true } }));
    expect(partial.status).toBe(422);
    expect(partial.body.type).toMatch(/unsupported-by-brp$/);
    expect(partial.body.errors[0]).toEqual({ pointer: '#/payment/partial', detail: 'BRP does not support part payment of an order: the payment must equal what is left to pay' });
    const players = await call(stack, 'POST', '/v1/brp/sales', sale('s-51', { bookings: [{ productId: 20, startDate: '2026-12-01', startTime: '18:00', resourceId: 1, players: [1, 2] }] }));
    expect(players.body.errors).toContainEqual({ pointer: '#/bookings/0/players', detail: 'BRP does not support players on a service booking' });
    const kronor = await call(stack, 'POST', '/v1/brp/sales', sale('s-52', { payment: { amount: 650.5, paymentMethodId: 1 } }));
    expect(kronor.status).toBe(400);
    expect(kronor.body.errors).toEqual([{ pointer: '#/payment/amount', detail: 'must be the amount in öre, a whole number (öre, not kronor)' }]);
    const empty = await call(stack, 'POST', '/v1/brp/sales', sale('s-53', { rows: [], bookings: [] }));
    expect(empty.body.errors).toEqual([{ pointer: '#/rows', detail: 'a sale needs at least one row or booking' }]);
    const time = await call(stack, 'POST', '/v1/brp/sales', sale('s-54', { bookings: [{ productId: 20, startDate: '2026-12-01', startTime: '25:00', resourceId: 1 }] }));
    expect(time.body.errors).toEqual([{ pointer: '#/bookings/0/startTime', detail: 'must be a time as HH:MM (24-hour)' }]);
    expect(delta(before)).toEqual({ orders: 0, items: 0, receipts: 0 });
    expect(await stack.deps.store.get(recordPk('brp', 'default', 's-50'))).toBeUndefined();
  });
});
