import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Stack } from '../../shared/local/stack.js';
import { call, testStack, waitForStatus } from '../helpers/stack.js';

const ROUTE = '/v1/cambio/payment-notices';
const notice = (contactId: string) => ({ status: 'PAID', contactId, paymentType: 'CARD' });

describe('metrics per system and the sweep\'s alarm inputs', () => {
  let stack: Stack;
  let offset = 0;
  beforeAll(async () => {
    stack = await testStack({ cambio: { ratePerSecond: 1000, faultWaitSeconds: 1 }, clock: () => Date.now() + offset });
  });
  afterAll(async () => {
    await stack?.close();
  });
  const counts = () => (stack.deps.metrics as unknown as { counts: Record<string, number> }).counts;

  it('counts posted, duplicate_suppressed, rate_limited, held and post latency', async () => {
    // Each payment's outcome is waited for: a busy machine may queue a first attempt, which the worker
    // then makes a moment later (posted, rate limited, held), after the reply.
    await call(stack, 'POST', ROUTE, notice('m-1'));
    await waitForStatus(stack, 'cambio', 'm-1', ['posted']);
    await call(stack, 'POST', ROUTE, notice('m-1'));
    stack.cambio!.faults.push('429');
    await call(stack, 'POST', ROUTE, notice('m-2'));
    await waitForStatus(stack, 'cambio', 'm-2', ['posted']);
    stack.cambio!.faults.push('403', '403');
    await call(stack, 'POST', ROUTE, notice('m-3'));
    await waitForStatus(stack, 'cambio', 'm-3', ['held']);
    expect(counts()).toMatchObject({ 'cambio.posted': 2, 'cambio.duplicate_suppressed': 1, 'cambio.rate_limited': 1, 'cambio.held': 1 });
    expect(counts()['cambio.post_latency']).toBeGreaterThan(0);
  });

  it('the sweep reports payments held for more than an hour', async () => {
    expect((await stack.sweepNow()) as unknown).toMatchObject({ heldOverAnHour: 0 });
    // An hour and a minute later, on a fifth minute (the sweep counts held payments every fifth minute).
    const later = Date.now() + 61 * 60_000;
    offset = 61 * 60_000 + ((5 - (Math.floor(later / 60_000) % 5)) % 5) * 60_000;
    expect((await stack.sweepNow()) as unknown).toMatchObject({ heldOverAnHour: 1 });
    expect(counts()['cambio.held_over_an_hour']).toBe(1);
  });
});
