import type { AddressInfo } from 'node:net';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import dynalite from 'dynalite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { documentClient, makeDynamoClient } from '../../../shared/store/dynamo.js';
import { ensureTable } from '../../../shared/store/table.js';

/**
 * CI failed once at a stack's first Scan with ResourceNotFoundException: a new table is CREATING until
 * dynalite's timer makes it ACTIVE, and a loaded machine let the Scan in first. Here the timer is slow
 * on purpose.
 */
describe('ensureTable', () => {
  let db: ReturnType<typeof dynalite>;
  let client: ReturnType<typeof makeDynamoClient>;

  beforeAll(async () => {
    db = dynalite({ createTableMs: 300 });
    await new Promise<void>((resolve) => db.listen(0, '127.0.0.1', () => resolve()));
    client = makeDynamoClient({ endpoint: `http://127.0.0.1:${(db.address() as AddressInfo).port}` });
  });
  afterAll(async () => {
    client?.destroy();
    await new Promise<void>((resolve) => db.close(() => resolve()));
  });

  it('returns once the new table takes requests, and at once for a table that exists', async () => {
    await ensureTable(client, 'records');
    const out = await documentClient(client).send(new ScanCommand({ TableName: 'records' }));
    expect(out.Items).toEqual([]);
    const again = Date.now();
    await ensureTable(client, 'records');
    expect(Date.now() - again).toBeLessThan(1_000);
  });

  it('a table another process left CREATING (its timer died with it) is waited for, then named in a sentence', async () => {
    const stuck = dynalite({ createTableMs: 60_000 });
    await new Promise<void>((resolve) => stuck.listen(0, '127.0.0.1', () => resolve()));
    const c = makeDynamoClient({ endpoint: `http://127.0.0.1:${(stuck.address() as AddressInfo).port}` });
    try {
      await expect(ensureTable(c, 'records', 300)).rejects.toThrow(/still CREATING after 0.3 s: a process that created it ended before it was ready/);
      // The second start: on main it returned at once, and the first read failed with ResourceNotFoundException.
      await expect(ensureTable(c, 'records', 300)).rejects.toThrow(/still CREATING/);
    } finally {
      c.destroy();
      await new Promise<void>((resolve) => stuck.close(() => resolve()));
    }
  });
});
