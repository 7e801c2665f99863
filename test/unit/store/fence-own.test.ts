import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoFenceStore, type makeDynamoClient } from '../../../shared/store/dynamo.js';
import { ensureTable } from '../../../shared/store/table.js';
import { startDynalite } from '../../helpers/dynalite.js';

/**
 * A fence consume whose write was made but whose reply was an error (a dropped connection after
 * DynamoDB applied it) is the consumer's own: read back by its mark, not thrown on. Thrown on, the
 * worker failed the message, the redelivery found the fence spent, and the sweep stranded a parking
 * system's payment as unknown with nothing sent (issue 19's simulation, seed 430).
 */
describe('DynamoFenceStore: a consume whose reply was lost', () => {
  let close: (() => Promise<void>) | undefined;
  let client: ReturnType<typeof makeDynamoClient>;

  beforeAll(async () => {
    ({ client, close } = await startDynalite());
    await ensureTable(client, 'records');
  });
  afterAll(async () => {
    await close?.();
  });

  it('is recognised as its own when the write was made; another consumer still loses', async () => {
    const fences = new DynamoFenceStore(client, 'records');
    const doc = (fences as unknown as { doc: typeof client }).doc;
    const send = doc.send.bind(doc);
    let dropped = 0;
    // The first UpdateItem is applied, then its reply is lost as an error.
    doc.send = (async (command: unknown, ...rest: unknown[]) => {
      const out = await (send as (c: unknown, ...r: unknown[]) => Promise<unknown>)(command, ...rest);
      if (dropped === 0 && (command as { constructor: { name: string } }).constructor.name === 'UpdateCommand') {
        dropped++;
        throw Object.assign(new Error('socket hang up'), { name: 'TimeoutError' });
      }
      return out;
    }) as typeof doc.send;
    try {
      expect(await fences.consume('w.1', [{ n: 1, deadline: 1_000 }])).toEqual(new Set([1]));
    } finally {
      doc.send = send;
    }
    expect(dropped).toBe(1);
    expect(await fences.consume('w.1', [{ n: 1, deadline: 2_000 }])).toEqual(new Set());
  });

  it('an error before anything was written is thrown on', async () => {
    const fences = new DynamoFenceStore(client, 'records');
    const doc = (fences as unknown as { doc: typeof client }).doc;
    const send = doc.send.bind(doc);
    doc.send = (async (command: unknown, ...rest: unknown[]) => {
      if ((command as { constructor: { name: string } }).constructor.name === 'UpdateCommand') throw new Error('connection refused');
      return (send as (c: unknown, ...r: unknown[]) => Promise<unknown>)(command, ...rest);
    }) as typeof doc.send;
    try {
      await expect(fences.consume('w.2', [{ n: 1, deadline: 1_000 }])).rejects.toThrow('connection refused');
    } finally {
      doc.send = send;
    }
  });
});
