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
});
