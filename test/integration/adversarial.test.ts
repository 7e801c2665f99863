import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { submit } from '../../shared/core/intake.js';
import { recordPk, type PaymentRecord } from '../../shared/core/types.js';
import { handleBatch } from '../../shared/core/worker.js';
import type { Stack } from '../../shared/local/stack.js';
import { retryMessage } from '../../shared/queue/port.js';
import type { Outcome } from '../../shared/core/types.js';
import type { SystemModule } from '../../shared/systems/types.js';
import { CountingDownstream, doubleSystem } from '../helpers/doubles.js';
import { eventually, testStack } from '../helpers/stack.js';

/**
 * An adversary's review of the engine: duplicate messages in one batch, conditional writes whose reply
 * was lost (the write made, then retried by the SDK or reported as an error), and a limiter that fails
 * between the claim and the send. Whatever happens, a payment reaches the downstream once, and one that
 * never left is never parked unknown.
 */

const ATTEMPT_MS = 400;
const MARGIN_MS = 100;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('adversarial: duplicates, lost replies and failing writes', () => {
  let stack: Stack;
  const downstream = new CountingDownstream();
  const reject = new Map<string, Outcome>();

  beforeAll(async () => {
    await downstream.start();
    stack = await testStack({
      settings: { attemptTimeoutMs: ATTEMPT_MS, settleMarginMs: MARGIN_MS, leaseMs: 1_000, reconcileDelayMs: 50 },
      queue: { invocationTimeoutMs: 3_000, visibilityTimeoutMs: 100, maxReceiveCount: 3 },
      modules: () => [
        doubleSystem('double-park', 'park', downstream, { reject }),
        doubleSystem('double-reconcile', 'reconcile', downstream, { reconcile: (key) => (downstream.count(key) === 0 ? { type: 'absent' } : { type: 'found', body: { key } }) }),
      ],
    });
  });
  afterAll(async () => {
    await stack?.close();
    await downstream.close();
  });

  const module = (system: string) => stack.deps.systems(system) as SystemModule;
  const record = (system: string, key: string) => stack.deps.store.get(recordPk(system, 't', key));
  const queued = (system: string, key: string) => submit(stack.deps, module(system), module(system).parse({ body: { key }, headers: {} }), { owner: 'test', correlationId: key });
  /** Sent in-process, as the HTTP route does when the system is idle. */
  const inline = (system: string, key: string) =>
    submit(stack.deps, module(system), module(system).parse({ body: { key }, headers: {} }), { owner: `route-${key}`, correlationId: key, deadline: Date.now() + 10_000 });
  /** Sweeps until the record leaves the active statuses (bounded); every status seen on the way is kept. */
  async function sweepUntilSettled(system: string, key: string, seen = new Set<string>()): Promise<PaymentRecord> {
    return eventually(async () => {
      await stack.sweepNow();
      const r = await record(system, key);
      if (r) seen.add(r.status);
      return r && !['retrying', 'reconciling'].includes(r.status) ? r : undefined;
    }, 10_000, 200);
  }

  it('two copies of one message in the same batch (a sweep duplicate beside the original): sent once, no message failed', async () => {
    // The queue's own copies are held back: this batch is the only one to see these payments.
    const send = stack.queue.send.bind(stack.queue);
    stack.queue.send = async () => undefined;
    let first, other;
    try {
      first = await queued('double-reconcile', 'same-batch-1');
      other = await queued('double-reconcile', 'same-batch-2');
    } finally {
      stack.queue.send = send;
    }
    const body = JSON.stringify(retryMessage(first.record, 'sweep'));
    const items = [
      { id: 'a', body },
      { id: 'b', body },
      { id: 'c', body: JSON.stringify(retryMessage(other.record, 'queued')) },
    ];
    // On main the fence write named counter cN twice: DynamoDB refused it (overlapping paths) and the
    // whole batch failed, with the other fences of the write unconsumed or, in other fence ids, consumed
    // and their payments left for the sweep to strand.
    const r = await handleBatch(stack.workerDeps[0] as typeof stack.deps, 'double-reconcile', items, Date.now() + 5_000);
    expect(r.failed).toEqual([]);
    expect(r.counts.duplicate).toBe(1);
    expect(downstream.count('same-batch-1')).toBe(1);
    expect(downstream.count('same-batch-2')).toBe(1);
    expect((await record('double-reconcile', 'same-batch-1'))?.status).toBe('posted');
    expect((await record('double-reconcile', 'same-batch-2'))?.status).toBe('posted');
  });
});
