import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { submit, upsert } from '../../shared/core/intake.js';
import type { PaymentRecord } from '../../shared/core/types.js';
import { handleBatch } from '../../shared/core/worker.js';
import type { Stack } from '../../shared/local/stack.js';
import { encodeRetryMessage, retryMessage } from '../../shared/queue/port.js';
import type { Outcome } from '../../shared/core/types.js';
import { CountingDownstream, doubleCalls, doubleSystem } from '../helpers/doubles.js';
import { eventually, testStack } from '../helpers/stack.js';

/**
 * An adversary's review of the engine: duplicate messages in one batch, conditional writes whose reply
 * was lost (the write made, then retried by the SDK or reported as an error), and a limiter that fails
 * between the claim and the send. Whatever happens, a payment reaches the downstream once, and one that
 * never left is never parked unknown.
 */

// Long enough that a busy machine (four test files on two cores) does not time an attempt out: a payment
// whose attempt timed out is parked unknown, which these cases do not expect.
const ATTEMPT_MS = 1_000;
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

  const { module, record, queued, inline, sweepUntilSettled } = doubleCalls(() => stack, { inlineOwner: (key) => `route-${key}` });

  /** The end every case here must reach: settled as `expected` through the sweep, never `unknown` on the way, sent once. */
  async function settlesOnce(key: string, expected: Record<string, unknown> = { status: 'posted' }): Promise<void> {
    const seen = new Set<string>();
    const r = await sweepUntilSettled('double-park', key, seen);
    expect(r).toMatchObject(expected);
    expect(seen.has('unknown')).toBe(false);
    expect(downstream.count(key)).toBe(1);
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
    const body = encodeRetryMessage(retryMessage(first.record, 'sweep'), stack.deps.messageKeys);
    const items = [
      { id: 'a', body },
      { id: 'b', body },
      { id: 'c', body: encodeRetryMessage(retryMessage(other.record, 'queued'), stack.deps.messageKeys) },
    ];
    // On main the fence write named counter cN twice: DynamoDB refused it (overlapping paths) and the
    // whole batch failed, with the other fences of the write unconsumed or, in other fence ids, consumed
    // and their payments left for the sweep to strand.
    const r = await handleBatch(stack.workerDeps[0] as typeof stack.deps, 'double-reconcile', items, Date.now() + 5_000);
    expect(r.failed).toEqual([]);
    expect(r.counts.duplicate).toBe(1);
    // On a busy machine the batch may miss a send slot and leave a payment for later; but every payment it
    // did not send, it said it left (a slot missed or none to be had), never dropped one silently for the
    // sweep to strand and reconcile (which then posts it, and the wait below alone would pass).
    const keys = ['same-batch-1', 'same-batch-2'];
    const deferred = (r.counts['no-slot'] ?? 0) + (r.counts['waiting-for-slot'] ?? 0) + (r.counts['no-time-left'] ?? 0);
    expect(keys.filter((key) => downstream.count(key) === 0).length).toBeLessThanOrEqual(deferred);
    // Then wait for the outcome.
    for (const key of keys) {
      expect((await sweepUntilSettled('double-reconcile', key)).status).toBe('posted');
      expect(downstream.count(key)).toBe(1);
    }
  });

  /**
   * Replaces `store.claim` (or `replace`) once: the write is made, and its reply is lost. `echo` is what
   * the caller sees then: the SDK's retry of the same conditional write (which fails its condition
   * against the item just written), or the error the SDK gives up with.
   */
  function loseReplyOnce(method: 'claim' | 'replace', echo: 'retry' | 'error', when: (r: PaymentRecord) => boolean = () => true) {
    const store = stack.deps.store as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
    const real = store[method]!.bind(store);
    store[method] = async (...args: unknown[]) => {
      if (!when(args[0] as PaymentRecord)) return real(...args);
      store[method] = real;
      await real(...args);
      if (echo === 'error') throw new Error('socket hang up');
      return real(...args);
    };
    return () => {
      store[method] = real;
    };
  }

  it.each([['retry'], ['error']] as const)(
    'a claim written but its reply lost (%s) is the request\'s own: sent once, never answered as a duplicate, never parked unknown',
    async (echo) => {
      const key = `lost-claim-${echo}`;
      const restore = loseReplyOnce('claim', echo);
      let result;
      try {
        result = await inline('double-park', key);
      } finally {
        restore();
      }
      // On main: the SDK's retry came back as "the key exists with the same payload", so the first
      // delivery was answered as a duplicate (the error: a 500); the record kept "sending" with nobody
      // sending, and the sweep parked it unknown though nothing had left.
      expect(result.kind).toBe('created');
      await settlesOnce(key);
    },
  );

  it('a new revision written but its reply lost is the request\'s own: sent once, never parked unknown', async () => {
    const key = 'lost-revision-1';
    reject.set(key, { type: 'rejected', httpStatus: 400, message: 'bad' });
    await inline('double-park', key);
    // Sent in-process, or queued when the machine is busy (the route's lane taken): either way it ends refused.
    expect((await sweepUntilSettled('double-park', key)).status).toBe('failed');
    reject.delete(key);
    // Corrected data under the same key: a new revision, whose conditional write is echoed by a retry.
    const restore = loseReplyOnce('replace', 'retry', (r) => r.pk.endsWith(key) && r.revision === 2);
    let result;
    try {
      result = await submit(stack.deps, module('double-park'), { tenant: 't', key, request: { key, corrected: true } }, { owner: 'route-rev', correlationId: key, deadline: Date.now() + 10_000 });
    } finally {
      restore();
    }
    expect(result.kind).toBe('revised');
    await settlesOnce(key, { status: 'posted', revision: 2 });
  });

  it('the limiter failing on the re-permit after a late claim: the payment is queued, sent once, never parked unknown', async () => {
    const key = 'late-claim-1';
    const store = stack.deps.store;
    const pacer = stack.deps.pacer;
    const claim = store.claim.bind(store);
    const lanePermit = pacer.lanePermit.bind(pacer);
    const reserve = pacer.reserve.bind(pacer);
    let broken = false;
    // The claim ends well after its permit (a slow write), so the send must take another permit; the
    // limiter's item cannot be written just then.
    store.claim = async (rec) => {
      await sleep(200);
      const got = await claim(rec);
      broken = true;
      return got;
    };
    pacer.lanePermit = async (...args) => {
      if (broken) throw new Error('ProvisionedThroughputExceededException');
      return lanePermit(...args);
    };
    pacer.reserve = async (...args) => {
      if (broken) throw new Error('ProvisionedThroughputExceededException');
      return reserve(...args);
    };
    let result;
    try {
      // On main this threw (a 500 at the route), leaving the record "sending" for the sweep to park.
      result = await inline('double-park', key);
    } finally {
      store.claim = claim;
      pacer.lanePermit = lanePermit;
      pacer.reserve = reserve;
    }
    expect(result.kind).toBe('created');
    await settlesOnce(key);
  });

  it('a settle written but its reply lost (the SDK retried): the wake-up is still queued, and the payment posts without waiting for the sweep', async () => {
    const key = 'lost-settle-1';
    reject.set(key, { type: 'retryable', httpStatus: 503, message: 'busy' });
    const restore = loseReplyOnce('replace', 'retry', (r) => r.pk.endsWith(key) && r.status === 'retrying' && r.attempts === 1);
    try {
      await queued('double-park', key);
      await eventually(async () => (await record('double-park', key))?.attempts === 1, 5_000);
    } finally {
      restore();
    }
    reject.delete(key);
    // No sweep here: on main the retry's message was never sent (the settle took its own write for a
    // record that had moved on), so the payment waited for the sweep's grace and its next run.
    const r = await eventually(async () => {
      const got = await record('double-park', key);
      return got?.status === 'posted' ? got : undefined;
    }, 8_000);
    expect(r.attempts).toBe(2);
    expect(downstream.count(key)).toBe(1);
  });

  it('corrected data after a rejection, replayed concurrently with two different bodies: one revision wins and is sent once, the rest are duplicates or conflicts', async () => {
    const key = 'revise-race-1';
    reject.set(key, { type: 'rejected', httpStatus: 400, message: 'bad' });
    await inline('double-park', key);
    // Sent in-process, or queued when the machine is busy (the route's lane taken): either way it ends refused.
    expect((await sweepUntilSettled('double-park', key)).status).toBe('failed');
    reject.delete(key);
    const send = (v: string, i: number) =>
      submit(stack.deps, module('double-park'), { tenant: 't', key, request: { key, v } }, { owner: `route-${v}-${i}`, correlationId: `${key}-${v}`, deadline: Date.now() + 10_000 });
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => send(i % 2 === 0 ? 'b' : 'c', i)));
    const kinds = results.map((r) => r.kind);
    expect(kinds.filter((k) => k === 'revised')).toHaveLength(1);
    expect(kinds.every((k) => ['revised', 'duplicate', 'conflict'].includes(k))).toBe(true);
    const r = await sweepUntilSettled('double-park', key);
    expect(r).toMatchObject({ status: 'posted', revision: 2 });
    const winner = results.find((x) => x.kind === 'revised')!.record.request.v;
    // Every reply with the winner's body is the revision or its duplicate; every other one a conflict.
    for (const [i, x] of results.entries()) expect(x.kind === 'conflict').toBe((i % 2 === 0 ? 'b' : 'c') !== winner);
    expect(downstream.count(key)).toBe(1);
  });

  it('a message naming another system\'s record is not sent by this system\'s worker', async () => {
    const key = 'misrouted-1';
    const send = stack.queue.send.bind(stack.queue);
    stack.queue.send = async () => undefined;
    let queuedRecord;
    try {
      queuedRecord = (await queued('double-reconcile', key)).record;
    } finally {
      stack.queue.send = send;
    }
    // The record (snapshot and all) of double-reconcile, on double-park's queue.
    const body = encodeRetryMessage({ ...retryMessage(queuedRecord, 'operator'), system: 'double-park' }, stack.deps.messageKeys);
    const r = await handleBatch(stack.workerDeps[0] as typeof stack.deps, 'double-park', [{ id: 'x', body }], Date.now() + 5_000);
    expect(r.failed).toEqual(['x']);
    expect(downstream.count(key)).toBe(0);
    expect((await record('double-reconcile', key))?.fence).toEqual(queuedRecord.fence);
  });

  it('a lane renewal that cannot be written fails no message: the batch takes shared slots and posts', async () => {
    const key = 'lane-down-1';
    const send = stack.queue.send.bind(stack.queue);
    stack.queue.send = async () => undefined;
    let queuedRecord;
    try {
      queuedRecord = (await queued('double-park', key)).record;
    } finally {
      stack.queue.send = send;
    }
    const pacer = stack.deps.pacer;
    const lanePermit = pacer.lanePermit.bind(pacer);
    pacer.lanePermit = async () => {
      throw new Error('ProvisionedThroughputExceededException');
    };
    let r;
    try {
      // On main the throw left handleBatch: every message of the batch was failed (towards the DLQ).
      r = await handleBatch(stack.deps, 'double-park', [{ id: 'l', body: encodeRetryMessage(retryMessage(queuedRecord, 'queued'), stack.deps.messageKeys) }], Date.now() + 5_000);
    } finally {
      pacer.lanePermit = lanePermit;
    }
    expect(r.failed).toEqual([]);
    // Sent in this batch, or (a busy machine made the send miss its slot) given back and sent from the queue.
    await eventually(async () => (await record('double-park', key))?.status === 'posted', 10_000);
    expect(downstream.count(key)).toBe(1);
  });

  it('a changed register version written but its reply lost (the SDK retried) is sent as the change, never answered as unchanged', async () => {
    const key = 'lost-upsert-1';
    const put = (v: string) =>
      upsert(stack.deps, module('double-reconcile'), { tenant: 't', key, request: { key, v } }, { owner: `route-put-${v}`, correlationId: `${key}-${v}`, deadline: Date.now() + 10_000 });
    expect((await put('1')).kind).toBe('created');
    await eventually(async () => (await record('double-reconcile', key))?.status === 'posted', 5_000);
    const restore = loseReplyOnce('replace', 'retry', (r) => r.pk.endsWith(key) && r.request.v === '2');
    let result;
    try {
      result = await put('2');
    } finally {
      restore();
    }
    // On main the echo sent the loop round again, where the record (its own write) had the new body:
    // "unchanged", with the record left "sending" for the sweep to strand and reconcile.
    expect(result.kind).toBe('changed');
    const r = await eventually(async () => {
      const got = await record('double-reconcile', key);
      return got?.status === 'posted' && got.request.v === '2' ? got : undefined;
    }, 5_000);
    expect(r.history.map((h) => h.event)).not.toContain('stranded');
    expect(downstream.count(key)).toBe(2);
  });

  // Not fixed: the fence item cannot tell a consume's own echo from another worker's consume. The write
  // sets c<n> = deadline under attribute_not_exists(c<n>); when its reply is lost and the SDK retries it,
  // the retry fails its condition against the counter it set itself, DynamoFenceStore.consume reports
  // the counter as taken by someone else, and the parking worker drops the message as a duplicate
  // without sending. The record keeps its consumed fence, and once its deadline has passed the sweep
  // strands it: NIF gen2 parks unknown a payment that never left. A fix needs the write to be
  // idempotent per consumer (a token per consume kept with the counter and allowed by the condition,
  // or a deadline value made unique and compared through ReturnValuesOnConditionCheckFailure), which
  // grows the fence item that pacer.ts sizes to one write unit: left for the lead to decide.
  it('a parking fence consume written but its reply lost (the SDK retried): sent once, never parked unknown', async () => {
    const key = 'lost-consume-1';
    // The fence store's own DynamoDB client: its first fence write goes through, its answer is lost,
    // and the same request is sent again (as the SDK's retry does), whose condition now fails.
    const doc = (stack.deps.fences as unknown as { doc: { send: (command: unknown) => Promise<unknown> } }).doc;
    const send = doc.send.bind(doc);
    let lose = 1;
    doc.send = async (command: unknown) => {
      const input = (command as { input?: { Key?: { pk?: string }; UpdateExpression?: string } }).input;
      if (lose > 0 && input?.UpdateExpression && String(input.Key?.pk).startsWith('fence#')) {
        lose--;
        await send(command);
      }
      return send(command);
    };
    try {
      await queued('double-park', key);
      await eventually(async () => lose === 0, 5_000);
    } finally {
      doc.send = send;
    }
    // Before: the retry's failed condition read as "consumed by another copy": the message was dropped
    // unsent and the sweep parked the payment unknown (downstream count 0).
    await settlesOnce(key);
  });
});
