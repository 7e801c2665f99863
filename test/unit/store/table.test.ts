import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { documentClient, type makeDynamoClient } from '../../../shared/store/dynamo.js';
import { ensureTable } from '../../../shared/store/table.js';
import { startDynalite } from '../../helpers/dynalite.js';

/**
 * CI failed once at a stack's first Scan with ResourceNotFoundException: a new table is CREATING until
 * dynalite's timer makes it ACTIVE, and a loaded machine let the Scan in first. Here the timer is slow
 * on purpose.
 */
describe('ensureTable', () => {
  let close: (() => Promise<void>) | undefined;
  let client: ReturnType<typeof makeDynamoClient>;

  beforeAll(async () => {
    ({ client, close } = await startDynalite({ createTableMs: 300 }));
  });
  afterAll(async () => {
    await close?.();
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
    const stuck = await startDynalite({ createTableMs: 60_000 });
    try {
      await expect(ensureTable(stuck.client, 'records', 300)).rejects.toThrow(/still CREATING after 0.3 s: a process that created it ended before it was ready/);
      // The second start: on main it returned at once, and the first read failed with ResourceNotFoundException.
      await expect(ensureTable(stuck.client, 'records', 300)).rejects.toThrow(/still CREATING/);
    } finally {
      await stuck.close();
    }
  });
});
