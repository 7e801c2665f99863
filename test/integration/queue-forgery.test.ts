import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PaymentRecord } from '../../shared/core/types.js';
import type { Stack } from '../../shared/local/stack.js';
import { call, eventually, testStack, waitForStatus } from '../helpers/stack.js';

const YEAR = new Date().getFullYear();
/** Seed 004's example, with this year's dates. */
const gen2 = (externalId: string) => ({
  amount: '450', comment: 'This was paid for club membership', externalId, isFamilyMember: 'true', isPaid: 'false', orgId: '7896', paidDate: `${YEAR}-05-08`,
  paidToOrgId: '4568', paymentCategory: 'Club membership', paymentTypeId: 0, periodFrom: `${YEAR}-05-08`, periodTo: `${YEAR}-06-08`, personId: '8675682',
});

/**
 * What someone with sqs:SendMessage on a retry queue (or a caller reaching a local hook) could make up:
 * a record copy of a payment nobody submitted, 99,999 kr, no owner, due now, with a fence nobody minted.
 */
function forgedFrom(real: PaymentRecord, externalId: string): PaymentRecord {
  const forged = JSON.parse(JSON.stringify(real).replaceAll(real.key, externalId)) as PaymentRecord;
  const { caller: _owner, ...rest } = forged;
  return { ...rest, status: 'retrying', version: 1, fence: { id: `made-up-${externalId}`, n: 0 }, nextAttemptAt: Date.now(), request: { payment: { ...(rest.request.payment as object), amountOre: 9_999_900 } } };
}

describe('a retry message is not trusted as the record (issue 20 item 4)', () => {
  let stack: Stack;
  let real: PaymentRecord;
  beforeAll(async () => {
    // A late slot is still used (lateMs): on a busy machine a send that misses its 20 ms gives the
    // message back with a record write, which a copy of a record that does not exist fails, hiding the hole.
    stack = await testStack({ nif: { ratePerSecond: 1000 }, pacing: { lateMs: 5_000 }, queue: { visibilityTimeoutMs: 50, maxReceiveCount: 2 } });
    expect([201, 202]).toContain((await call(stack, 'POST', '/v1/nif/payments', gen2('real-1'))).status);
    await waitForStatus(stack, 'nif', 'real-1', ['posted']);
    real = (await stack.deps.store.get('nif#default#real-1')) as PaymentRecord;
    expect(real).toBeDefined();
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('a made-up message put straight on the queue posts nothing and ends among the dead letters', async () => {
    const forged = forgedFrom(real, 'forged-1');
    // Exactly what SendMessage puts on the queue: a body, no more.
    stack.queue.queue('nif').send(JSON.stringify({ pk: forged.pk, system: 'nif', reason: 'queued', fence: forged.fence, record: forged }), 0);
    // Either it reaches NIF (main: the worker took the copy as the record and the made-up fence as new) or it is refused.
    await eventually(async () => stack.nif!.count('forged-1') > 0 || stack.queue.deadLetters.some((d) => d.body.includes('forged-1')), 15_000);
    expect(stack.nif!.payments.filter((p) => p.externalReference === 'forged-1').map((p) => p.amount)).toEqual([]);
    expect(await stack.deps.store.get(forged.pk)).toBeUndefined();
  });

  it('an operator\'s enqueue carries no record copy: a made-up one is dropped, the worker reads the record (none here)', async () => {
    const forged = forgedFrom(real, 'forged-2');
    const r = await call(stack, 'POST', '/__local/enqueue', { pk: forged.pk, message: { pk: forged.pk, system: 'nif', reason: 'operator', fence: forged.fence, record: forged } }, { authorization: `Bearer ${stack.operatorKey}` });
    expect(r.status).toBe(200);
    // Long enough for a send slot (the copy was sent on main after a few deferrals on a busy machine).
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    expect(await stack.queue.idle(10_000)).toBe(true);
    expect(stack.nif!.count('forged-2')).toBe(0);
  });

  it('the stack\'s own messages still carry the record and are sent: a 503 retried through the queue posts once', async () => {
    stack.nif!.faults.push('503');
    const r = await call(stack, 'POST', '/v1/nif/payments', gen2('real-2'));
    expect([201, 202]).toContain(r.status);
    await waitForStatus(stack, 'nif', 'real-2', ['posted']);
    expect(stack.nif!.count('real-2')).toBe(1);
  });
});
