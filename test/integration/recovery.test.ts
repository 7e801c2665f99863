import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repost, resolveNotPosted } from '../../shared/core/operator.js';
import { MAX_ERROR_TEXT } from '../../shared/core/lifecycle.js';
import type { Outcome } from '../../shared/core/types.js';
import { handleBatch } from '../../shared/core/worker.js';
import type { Stack } from '../../shared/local/stack.js';
import { encodeRetryMessage, retryMessage } from '../../shared/queue/port.js';
import type { ReconcileResult, SystemModule } from '../../shared/systems/types.js';
import { CountingDownstream, doubleCalls, doubleSystem } from '../helpers/doubles.js';
import { eventually, testStack } from '../helpers/stack.js';

/**
 * Recovery of attempts that did not finish, with test doubles whose downstream counts what reaches it
 * (issue 10): whatever happens to a worker, a payment reaches the downstream once, or is parked where
 * it may have, never because it waited for a token or a slot.
 */

const ATTEMPT_MS = 400;
const MARGIN_MS = 100;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The first call of `target[method]` takes `ms` longer (a slow write on a busy machine); returns the undo. */
function slowFirstCall<T extends object, K extends keyof T>(target: T, method: K, ms: number): () => void {
  const original = target[method];
  const call = (original as (...args: unknown[]) => Promise<unknown>).bind(target);
  let slow = 1;
  target[method] = (async (...args: unknown[]) => {
    if (slow-- > 0) await sleep(ms);
    return call(...args);
  }) as T[K];
  return () => {
    target[method] = original;
  };
}

/** Whether the in-process attempt gave up its permit after the claim and went to the queue. */
const queuedAfterClaim = (r: { history: { event: string; detail?: string }[] }) => r.history.some((h) => h.event === 'queued' && /after the claim/.test(h.detail ?? ''));

describe('recovery of unfinished attempts', () => {
  let stack: Stack;
  const downstream = new CountingDownstream();
  const dieAfter = new Set<string>();
  const dieBefore = new Set<string>();
  const reject = new Map<string, Outcome>();
  let absentFor = new Set<string>();
  const reconcile = (key: string): ReconcileResult => (absentFor.has(key) || downstream.count(key) === 0 ? { type: 'absent' } : { type: 'found', body: { key } });

  beforeAll(async () => {
    await downstream.start();
    stack = await testStack({
      settings: { attemptTimeoutMs: ATTEMPT_MS, settleMarginMs: MARGIN_MS, leaseMs: 1_000, reconcileDelayMs: 50 },
      // The worker function's timeout: an invocation stuck in a dead attempt ends, as in Lambda.
      queue: { invocationTimeoutMs: 3_000, visibilityTimeoutMs: 100, maxReceiveCount: 3 },
      modules: () => [
        doubleSystem('double-park', 'park', downstream, { dieAfterSend: dieAfter, dieBeforeSend: dieBefore, reject }),
        doubleSystem('double-reconcile', 'reconcile', downstream, { dieAfterSend: dieAfter, dieBeforeSend: dieBefore, reconcile }),
        doubleSystem('double-resend', 'resend', downstream, { dieAfterSend: dieAfter, dieBeforeSend: dieBefore }),
      ],
    });
  });
  afterAll(async () => {
    await stack?.close();
    await downstream.close();
  });

  const { module, record, queued, inline, settledAs, sweepUntilSettled } = doubleCalls(() => stack);

  it.each([
    ['park', 'double-park', 'unknown'],
    ['reconcile', 'double-reconcile', 'posted'],
    ['resend', 'double-resend', 'posted'],
  ])('a queued attempt whose worker died after sending (%s) is stranded and settled by policy', async (_policy, system, expected) => {
    const key = `q-died-${system}`;
    dieAfter.add(key);
    await queued(system, key);
    await eventually(async () => downstream.count(key) === 1);
    const r = await sweepUntilSettled(system, key);
    expect(r.status).toBe(expected);
    expect(r.history.map((h) => h.event)).toContain('stranded');
    // Re-sent only where sending again is harmless (resend); found by reconciliation; parked otherwise. A
    // resend may go out once more on a machine busy enough to time the second attempt out (harmless there:
    // CI, with other work beside it, saw 3).
    if (system === 'double-resend') expect(downstream.count(key)).toBeGreaterThanOrEqual(2);
    else expect(downstream.count(key)).toBe(1);
  });

  it('an in-process attempt that died while sending is stranded once its lease ends (park: unknown, sent once)', async () => {
    // On a busy machine the claim can end after its permit, and the attempt goes to the queue instead
    // (a fenced worker send, no lease): that payment must end the same way, and the next key is tried,
    // so that one in-process attempt is always the one that dies (at most three tries).
    let inProcess = false;
    for (let i = 0; i < 3 && !inProcess; i++) {
      const key = `i-died-${i}`;
      dieAfter.add(key);
      void inline('double-park', key);
      await eventually(async () => downstream.count(key) === 1);
      const during = await record('double-park', key);
      inProcess = !queuedAfterClaim(during!);
      if (inProcess) expect(during).toMatchObject({ status: 'retrying', sending: true, leaseOwner: 'route' });
      await sleep(ATTEMPT_MS + 2 * MARGIN_MS + 100);
      const r = await sweepUntilSettled('double-park', key);
      expect(r.status).toBe('unknown');
      expect(downstream.count(key)).toBe(1);
    }
    expect(inProcess, 'three claims in a row missed their permit: no in-process attempt was made').toBe(true);
  });

  it('a worker that died while getting its token leaves the payment due, never unknown, and it posts once (issue 10)', async () => {
    const parking = module('double-park') as SystemModule & { prepare?: SystemModule['prepare'] };
    let hang = true;
    // The first batch waits for credentials that never come: its invocation times out, as in Lambda.
    parking.prepare = async () => {
      if (hang) {
        hang = false;
        return new Promise<undefined>(() => undefined);
      }
      return undefined;
    };
    try {
      await queued('double-park', 'q-token');
      const r = await settledAs('double-park', 'q-token', ['posted', 'unknown']);
      expect(r.status).toBe('posted');
      expect(r.history.map((h) => h.event)).not.toContain('stranded');
      expect(downstream.count('q-token')).toBe(1);
    } finally {
      delete parking.prepare;
    }
  });

  it('two workers handed the same message (a redelivery, a sweep duplicate) send it once', async () => {
    const first = await queued('double-reconcile', 'dup-1');
    // A second copy of the message, handled by another worker at the same time as the queue's own.
    const body = encodeRetryMessage(retryMessage(first.record, 'duplicate'), stack.deps.messageKeys);
    const other = stack.workerDeps[0] as typeof stack.deps;
    const results = await Promise.all([
      handleBatch(other, 'double-reconcile', [{ id: 'a', body }], Date.now() + 5_000),
      handleBatch(other, 'double-reconcile', [{ id: 'b', body }], Date.now() + 5_000),
    ]);
    await settledAs('double-reconcile', 'dup-1', ['posted']);
    await stack.queue.idle(5_000);
    expect(downstream.count('dup-1')).toBe(1);
    expect(results.map((r) => r.counts.duplicate ?? 0).reduce((a, b) => a + b)).toBeGreaterThanOrEqual(1);
  });

  it('a lost queue message is found by the sweep and the payment posted once', async () => {
    const send = stack.queue.send.bind(stack.queue);
    let lose = 1;
    stack.queue.send = async (message, delay) => {
      if (lose-- > 0) throw new Error('SendMessage timed out');
      return send(message, delay);
    };
    try {
      await queued('double-resend', 'lost-1');
      await sleep(300);
      expect(downstream.count('lost-1')).toBe(0);
      expect((await stack.sweepNow()).enqueued).toBeGreaterThanOrEqual(1);
      await settledAs('double-resend', 'lost-1', ['posted']);
      expect(downstream.count('lost-1')).toBe(1);
    } finally {
      stack.queue.send = send;
    }
  });

  it('a rate limiter that cannot be reached sends nothing: the message waits, then posts once', async () => {
    const pacer = stack.deps.pacer;
    const reserve = pacer.reserve.bind(pacer);
    let failures = 1;
    pacer.reserve = async (...args) => {
      if (failures-- > 0) throw new Error('ProvisionedThroughputExceededException');
      return reserve(...args);
    };
    try {
      await queued('double-park', 'limiter-1');
      const r = await eventually(async () => {
        await stack.sweepNow();
        const got = await record('double-park', 'limiter-1');
        return got?.status === 'posted' ? got : undefined;
      }, 10_000, 300);
      expect(r.status).toBe('posted');
      expect(downstream.count('limiter-1')).toBe(1);
    } finally {
      pacer.reserve = reserve;
    }
  });

  it('a parking system whose fence consume ends after its slot: nothing sent late, recorded as due again, posted once, never unknown', async () => {
    // The consume is started just before the slot (by what consumes take lately); this one takes
    // far longer, so the send would leave late: it must not, and its spent fence must not strand it.
    const restore = slowFirstCall(stack.deps.fences, 'consume', 250);
    try {
      await queued('double-park', 'slow-consume-1');
      const seen = new Set<string>();
      const r = await eventually(async () => {
        const got = await record('double-park', 'slow-consume-1');
        if (got) seen.add(got.status);
        return got?.status === 'posted' ? got : undefined;
      }, 10_000, 50);
      expect(r.history.map((h) => h.event)).toContain('deferred');
      expect(seen.has('unknown')).toBe(false);
      expect(downstream.count('slow-consume-1')).toBe(1);
    } finally {
      restore();
    }
  });

  it.each([
    ['double-park', true],
    ['double-resend', false],
  ] as const)('%s: an in-process claim that ends after its permit: a parking system queues at once instead of waiting with "sending" on its record', async (system, queues) => {
    // Late for its permit by far more than a send may be, with most of the attempt's time still left.
    const restore = slowFirstCall(stack.deps.store, 'claim', 100);
    // A lane booked ahead: the late permit cannot move to now (Pacer.moveLaneSend; where the lane has room
    // it goes at once, which waits with nothing either: send-slot.test.ts).
    const pacer = stack.deps.pacer;
    const moveLaneSend = pacer.moveLaneSend.bind(pacer);
    pacer.moveLaneSend = () => false;
    try {
      const key = `slow-claim-${system}`;
      await inline(system, key);
      const r = await settledAs(system, key, ['posted']);
      expect(queuedAfterClaim(r)).toBe(queues);
      expect(downstream.count(key)).toBe(1);
    } finally {
      restore();
      pacer.moveLaneSend = moveLaneSend;
    }
  });

  it('an in-process claim late for its permit takes a second one; a wait for that one that wakes late sends nothing late either', async () => {
    const restoreClaim = slowFirstCall(stack.deps.store, 'claim', 100);
    const pacer = stack.deps.pacer;
    const lanePermit = pacer.lanePermit.bind(pacer);
    const sleep = stack.deps.sleep;
    const moveLaneSend = pacer.moveLaneSend.bind(pacer);
    let permits = 0;
    let overshoot = false;
    // A lane booked ahead: a late permit cannot move to when its send can leave (Pacer.moveLaneSend), as it
    // does where the lane has room (send-slot.test.ts).
    pacer.moveLaneSend = () => false;
    // The second permit (after the late claim) comes 50 ms ahead, and the wait for it wakes 100 ms late
    // (a busy event loop): on main the send then left 100 ms after its permit, past what a send may be.
    pacer.lanePermit = async (...args) => {
      if (++permits === 2) {
        overshoot = true;
        return stack.deps.clock() + 50;
      }
      return lanePermit(...args);
    };
    stack.deps.sleep = async (ms: number) => {
      if (overshoot) {
        overshoot = false;
        return sleep(ms + 100);
      }
      return sleep(ms);
    };
    try {
      const key = 'late-wake-1';
      await inline('double-resend', key);
      const r = await settledAs('double-resend', key, ['posted']);
      expect(permits).toBeGreaterThanOrEqual(2);
      expect(queuedAfterClaim(r)).toBe(true);
      expect(downstream.count(key)).toBe(1);
    } finally {
      restoreClaim();
      pacer.lanePermit = lanePermit;
      pacer.moveLaneSend = moveLaneSend;
      stack.deps.sleep = sleep;
    }
  });

  it('a huge rejection body is kept capped, the record written, and nothing sent again (issue 10: it broke the settle)', async () => {
    reject.set('huge-1', { type: 'rejected', httpStatus: 400, code: 'E', message: 'x'.repeat(600_000), body: 'y'.repeat(600_000) });
    await queued('double-park', 'huge-1');
    const r = await settledAs('double-park', 'huge-1', ['failed']);
    expect(r.error?.message.length).toBeLessThan(MAX_ERROR_TEXT + 60);
    expect(r.attempts).toBe(1);
    await stack.queue.idle(5_000);
    expect((await record('double-park', 'huge-1'))?.attempts).toBe(1);
  });

  it('a settle that fails for a moment is retried as a settle, never turned into a re-send', async () => {
    const store = stack.deps.store;
    const replace = store.replace.bind(store);
    let failNext = false;
    store.replace = async (next, version) => {
      if (failNext && next.status === 'posted') {
        failNext = false;
        throw new Error('InternalServerError');
      }
      return replace(next, version);
    };
    try {
      failNext = true;
      await queued('double-resend', 'settle-1');
      await settledAs('double-resend', 'settle-1', ['posted']);
      await stack.queue.idle(5_000);
      expect(downstream.count('settle-1')).toBe(1);
    } finally {
      store.replace = replace;
    }
  });

  it('a new revision reconciles afresh: the re-send allowance of an earlier one does not park it (issue 10)', async () => {
    // Revision 1: the worker dies after sending; reconciliation finds nothing and sends once more (its
    // one re-send): posted.
    absentFor = new Set(['rev-1']);
    dieAfter.add('rev-1');
    await queued('double-reconcile', 'rev-1');
    await eventually(async () => downstream.count('rev-1') === 1);
    let r = await sweepUntilSettled('double-reconcile', 'rev-1');
    expect(r).toMatchObject({ status: 'posted', reconcileResends: 1 });
    expect(downstream.count('rev-1')).toBe(2);
    // An operator meets it as unknown, establishes it did not arrive (issue 19: the one way a payment that
    // may have arrived is sent again) and reposts it: revision 2 dies the same way.
    await stack.deps.store.replace({ ...r, status: 'unknown', nextAttemptAt: Date.now() }, r.version);
    dieAfter.add('rev-1');
    const ops = { store: stack.deps.store, queue: stack.queue, clock: Date.now, fence: () => stack.deps.pacer.mintFence() };
    expect((await resolveNotPosted(ops, r.pk, 'ops', 'not in the journal')).ok).toBe(true);
    const done = await repost(ops, r.pk, 'ops', 'not in the journal');
    expect(done.ok).toBe(true);
    await eventually(async () => downstream.count('rev-1') === 3);
    r = await sweepUntilSettled('double-reconcile', 'rev-1');
    // On main the first revision's spent allowance parked every later one as unknown.
    expect(r).toMatchObject({ status: 'posted', revision: 2, reconcileResends: 1 });
    expect(downstream.count('rev-1')).toBe(4);
    absentFor = new Set();
  });

  it('a message that can never be read ends in the dead-letter list after maxReceiveCount receives', async () => {
    stack.queue.queue('double-park').send('{"not":"a message"}', 0);
    await eventually(async () => stack.queue.deadLetters.some((d) => d.body === '{"not":"a message"}'), 5_000);
    expect(stack.queue.deadLetters.find((d) => d.body === '{"not":"a message"}')).toMatchObject({ receiveCount: 3 });
  });
});

/**
 * The bench's start at N = 200 lost most of a second: in a burst, a claim queued behind the others ended
 * after its permit, and the send took a later slot. A system whose payment may be sent again (resend)
 * claims as soon as its first attempt is planned and then waits for the permit, so a slow claim costs it
 * nothing; the others still claim just before the permit (a crash in between is theirs to settle).
 */
describe('a slow claim in a burst', () => {
  const downstream = new CountingDownstream();
  let stack: Stack;
  beforeAll(async () => {
    await downstream.start();
    stack = await testStack({
      // 5/s: the intake lane carries 2 sends per paced window, 515 ms apart.
      modules: () => [
        { ...doubleSystem('paced-resend', 'resend', downstream), maxPerSecond: () => 5 },
        { ...doubleSystem('paced-park', 'park', downstream), maxPerSecond: () => 5 },
      ],
    });
  });
  afterAll(async () => {
    await stack?.close();
    await downstream.close();
  });

  const { inline } = doubleCalls(() => stack);

  it.each([
    ['paced-resend', false],
    ['paced-park', true],
  ] as const)('%s: the second of two payments, its claim 300 ms slow, is sent on its own permit when the system resends', async (system, missesIt) => {
    const store = stack.deps.store;
    const claim = store.claim.bind(store);
    const slowKey = `${system}-b`;
    store.claim = async (record) => {
      if (record.key === slowKey) await new Promise((r) => setTimeout(r, 300));
      return claim(record);
    };
    try {
      const first = inline(system, `${system}-a`);
      // The second arrives a moment later: its lane permit is one lane interval (515 ms) after the first's.
      await new Promise((r) => setTimeout(r, 20));
      const second = inline(system, slowKey);
      await Promise.all([first, second]);
      // Both sent (a busy machine may queue the first one: its send time is then later, never missing).
      await eventually(async () => downstream.count(slowKey) === 1 && downstream.count(`${system}-a`) === 1, 10_000);
      const gap = (downstream.firstAt.get(slowKey) as number) - (downstream.firstAt.get(`${system}-a`) as number);
      // On time: about 515 ms. On main the claim ended ~300 ms after the permit and the send took the lane's next
      // one (1,030 ms after the first) or the queue; a parking system still claims just before its permit.
      // A parking system claims just before its permit, so a slow claim may cost it the permit (the next
      // one, or the queue) or not, as the claim estimate it learnt says: either way it is never sent early.
      if (missesIt) expect(gap).toBeGreaterThan(500);
      else expect(gap).toBeLessThan(850);
      expect(downstream.count(slowKey)).toBe(1);
    } finally {
      store.claim = claim;
    }
  });
});
