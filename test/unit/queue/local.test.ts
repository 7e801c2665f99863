import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_LOCAL_QUEUE, LocalQueue, type LocalQueueOptions } from '../../../shared/queue/local.js';
import { WORKER_BATCH } from '../../../shared/queue/port.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A queue whose one consumer records each batch (its bodies and when it came) and holds it `holdMs`. */
function recording(options: Partial<LocalQueueOptions>, holdMs = 0) {
  const queue = new LocalQueue('test', { ...DEFAULT_LOCAL_QUEUE, concurrency: 1, ...options });
  const batches: { bodies: string[]; at: number }[] = [];
  queue.addConsumer(async (event) => {
    batches.push({ bodies: event.Records.map((r) => r.body), at: Date.now() });
    if (holdMs > 0) await sleep(holdMs);
  });
  return { queue, batches };
}

async function until(check: () => boolean, timeoutMs = 3_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !check() && Date.now() < deadline; ) await sleep(10);
}

describe('local queue: batches gathered like an event source mapping with a batching window', () => {
  let queue: LocalQueue | undefined;
  afterEach(() => queue?.close());

  it('defaults to what the deployed mapping does: batches of up to 100, gathered for up to a second', () => {
    expect(WORKER_BATCH).toEqual({ size: 100, windowSeconds: 1 });
    expect(DEFAULT_LOCAL_QUEUE).toMatchObject({ batchSize: 100, batchingWindowMs: 1_000 });
  });

  it('messages arriving within the window go out as one batch when it ends, not one by one', async () => {
    const r = recording({ batchingWindowMs: 300 });
    queue = r.queue;
    const first = Date.now();
    for (let i = 0; i < 5; i++) {
      r.queue.send(`m${i}`, 0);
      await sleep(20);
    }
    // Gathered messages are received already: not visible, as SQS counts them.
    expect(r.queue.visible).toBe(0);
    await until(() => r.batches.length > 0);
    expect(r.batches.map((b) => b.bodies)).toEqual([['m0', 'm1', 'm2', 'm3', 'm4']]);
    expect((r.batches[0] as { at: number }).at - first).toBeGreaterThanOrEqual(290);
  });

  it('a full batch goes at once, the rest waits for its own window', async () => {
    const r = recording({ batchingWindowMs: 400, batchSize: 3 });
    queue = r.queue;
    const first = Date.now();
    for (let i = 0; i < 4; i++) r.queue.send(`m${i}`, 0);
    await until(() => r.batches.length > 0);
    expect(r.batches[0]?.bodies).toEqual(['m0', 'm1', 'm2']);
    expect((r.batches[0] as { at: number }).at - first).toBeLessThan(200);
    await until(() => r.batches.length > 1);
    expect(r.batches[1]?.bodies).toEqual(['m3']);
    expect((r.batches[1] as { at: number }).at - first).toBeGreaterThanOrEqual(390);
  });

  it('while every worker is busy, waiting messages are visible (the intake sees a backlog)', async () => {
    const r = recording({ batchingWindowMs: 50 }, 500);
    queue = r.queue;
    r.queue.send('first', 0);
    await until(() => r.batches.length > 0);
    r.queue.send('second', 0);
    r.queue.send('third', 0);
    expect(r.queue.visible).toBe(2);
    await until(() => r.batches.length > 1);
    expect(r.batches[1]?.bodies).toEqual(['second', 'third']);
  });

  it('without a window each message goes as soon as a worker is free', async () => {
    const r = recording({ batchingWindowMs: 0 });
    queue = r.queue;
    const first = Date.now();
    r.queue.send('m0', 0);
    await until(() => r.batches.length > 0);
    expect((r.batches[0] as { at: number }).at - first).toBeLessThan(100);
  });
});

describe('local queue: visible while paused', () => {
  it('a paused queue gathers nothing: every waiting message is visible', () => {
    const queue = new LocalQueue('test', { ...DEFAULT_LOCAL_QUEUE, concurrency: 1 });
    try {
      queue.addConsumer(async () => undefined);
      queue.pause();
      for (let i = 0; i < 25; i++) queue.send(`m${i}`, 0);
      expect(queue.visible).toBe(25);
      expect(queue.depth).toBe(25);
    } finally {
      queue.close();
    }
  });
});
