import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Stack } from '../../shared/local/stack.js';
import { call, historyEvents, outcomeViews, queuedFirst, statusOf, testStack, waitForStatus } from '../helpers/stack.js';

const ROUTE = '/v1/cambio/payment-notices';
const notice = (contactId: string, paymentType = 'CARD') => ({ status: 'PAID', contactId, paymentType });

describe('Cambio payment notices end to end (dynalite, local queue, sandbox over loopback)', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await testStack({ cambio: { ratePerSecond: 1000, faultWaitSeconds: 1 } });
  });
  afterAll(async () => {
    await stack?.close();
  });
  afterEach(() => {
    stack.cambio?.faults.clear();
  });

  const applied = (contactId: string) => stack.cambio?.stats.applied[contactId] ?? 0;

  it('posts a payment notice once and answers 201 (202 if a busy machine queued it), then 200 for a replay', async () => {
    const first = await call(stack, 'POST', ROUTE, notice('c-basic'));
    expect([201, 202], JSON.stringify(first.body)).toContain(first.status);
    expect(first.headers.get('location')).toBe('/v1/payments/cambio/c-basic');
    const rec = await waitForStatus(stack, 'cambio', 'c-basic', ['posted']);
    expect(rec).toMatchObject({ system: 'cambio', key: 'c-basic', status: 'posted', attempts: 1 });

    const replay = await call(stack, 'POST', ROUTE, notice('c-basic'));
    expect(replay.status).toBe(200);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(applied('c-basic')).toBe(1);
  });

  it('100 concurrent deliveries of one contactId reach Cambio exactly once, with no 5xx', async () => {
    const before = stack.cambio!.stats.noticeRequests;
    const replies = await Promise.all(Array.from({ length: 100 }, () => call(stack, 'POST', ROUTE, notice('c-concurrent'))));
    const statuses = replies.map((r) => r.status);
    expect(statuses.every((s) => s === 200 || s === 201 || s === 202)).toBe(true);
    // Exactly one reply created the payment (201 if it was sent in-process, 202 if queued); the rest are replays.
    expect(replies.filter((r) => r.headers.get('idempotent-replayed') !== 'true')).toHaveLength(1);
    await waitForStatus(stack, 'cambio', 'c-concurrent', ['posted']);
    expect(stack.cambio!.stats.noticeRequests - before).toBe(1);
    expect(applied('c-concurrent')).toBe(1);
  });

  it('refuses the same key with another payload with 422 and sends nothing', async () => {
    expect([201, 202]).toContain((await call(stack, 'POST', ROUTE, notice('c-conflict', 'CARD'))).status);
    await waitForStatus(stack, 'cambio', 'c-conflict', ['posted']);
    const second = await call(stack, 'POST', ROUTE, notice('c-conflict', 'CASH'));
    expect(second.status).toBe(422);
    expect(second.headers.get('content-type')).toBe('application/problem+json');
    expect(second.body.type).toMatch(/idempotency-key-reused$/);
    expect(applied('c-conflict')).toBe(1);
    expect((await statusOf(stack, 'cambio', 'c-conflict')).request.paymentType).toBe('CARD');
  });

  it('a 429 then success: 202, then posted once with attempts 2', async () => {
    stack.cambio!.faults.push('429');
    const first = await call(stack, 'POST', ROUTE, notice('c-429'));
    expect(first.status).toBe(202);
    expect(first.body.status).toBe('retrying');
    const rec = await waitForStatus(stack, 'cambio', 'c-429', ['posted']);
    expect(rec.attempts).toBe(2);
    expect(applied('c-429')).toBe(1);
    expect(historyEvents(rec)).toEqual(['received', 'rate_limited', 'posted']);
  });

  it('ResultCode ERROR inside a 200 is a 422 with the Comment; a replay gives the same answer', async () => {
    const r = await call(stack, 'POST', ROUTE, notice('ERROR-unknown-contact'));
    // The 422 problem body is the in-process attempt's reply, checked when the reply is that one. A busy
    // machine queues the attempt (202, `retrying`) and the worker's send meets the same refusal: the
    // record carries it then, and the replay below answers the 422 from it.
    if (!queuedFirst(r)) {
      expect(r.status).toBe(422);
      expect(r.body.type).toMatch(/rejected-downstream$/);
      expect(r.body.detail).toContain('Kontakten hittades inte');
      expect(r.body.downstream).toMatchObject({ code: 'ERROR', httpStatus: 200 });
    }
    const rec = await waitForStatus(stack, 'cambio', 'ERROR-unknown-contact', ['failed']);
    expect(rec.error).toMatchObject({ kind: 'rejected', code: 'ERROR', httpStatus: 200 });
    expect(rec.error.message).toContain('Kontakten hittades inte');
    const replay = await call(stack, 'POST', ROUTE, notice('ERROR-unknown-contact'));
    expect(replay.status).toBe(422);
    expect(replay.body.type).toMatch(/rejected-downstream$/);
    expect(replay.body.detail).toContain('Kontakten hittades inte');
    expect(replay.body.downstream).toMatchObject({ code: 'ERROR', httpStatus: 200 });
  });

  it('ResultCode INFO is success, with the comment kept', async () => {
    const r = await call(stack, 'POST', ROUTE, notice('INFO-already-paid'));
    expect([201, 202], JSON.stringify(r.body)).toContain(r.status);
    const rec = await waitForStatus(stack, 'cambio', 'INFO-already-paid', ['posted']);
    expect(rec.result.note).toBe('Betalning var redan registrerad');
  });

  it('an expired token (401) is refreshed once and the post succeeds', async () => {
    // Each posted in process (201) or queued on a busy machine (202), and waited for until posted.
    expect([201, 202]).toContain((await call(stack, 'POST', ROUTE, notice('c-token-a'))).status);
    await waitForStatus(stack, 'cambio', 'c-token-a', ['posted']);
    const tokensBefore = stack.cambio!.stats.tokenRequests;
    stack.cambio!.revokeTokens();
    const r = await call(stack, 'POST', ROUTE, notice('c-token-b'));
    expect([201, 202], JSON.stringify(r.body)).toContain(r.status);
    await waitForStatus(stack, 'cambio', 'c-token-b', ['posted']);
    expect(stack.cambio!.stats.tokenRequests - tokensBefore).toBe(1);
    expect(applied('c-token-b')).toBe(1);
  });

  it('403 Insufficient scope is held after one refresh, not retried in a loop', async () => {
    stack.cambio!.faults.push('403', '403');
    const before = stack.cambio!.stats.noticeRequests;
    const r = await call(stack, 'POST', ROUTE, notice('c-scope'));
    expect(r.status).toBe(202);
    // Held by the in-process attempt (the reply and the record say so), or, when a busy machine queued
    // it (202, `retrying`), by the worker's attempt (the record says so).
    for (const view of await outcomeViews(stack, r, 'cambio', 'c-scope', ['held'])) {
      expect(view.status).toBe('held');
      expect(view.error).toMatchObject({ kind: 'auth', httpStatus: 403, message: 'Insufficient scope.' });
    }
    expect(stack.cambio!.stats.noticeRequests - before).toBe(2);
    expect(applied('c-scope')).toBe(0);
  });

  it('an ambiguous 500 is re-sent for Cambio (PAID is a state) and ends posted', async () => {
    stack.cambio!.faults.push('500');
    const r = await call(stack, 'POST', ROUTE, notice('c-500'));
    expect(r.status).toBe(202);
    expect(r.body.status).toBe('retrying');
    const rec = await waitForStatus(stack, 'cambio', 'c-500', ['posted']);
    expect(rec.attempts).toBe(2);
    expect(applied('c-500')).toBe(2);
  });
});
