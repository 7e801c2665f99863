import type { AddressInfo } from 'node:net';
import dynalite from 'dynalite';
import { makeDynamoClient } from '../../shared/store/dynamo.js';

/** An in-memory dynalite on loopback and a client of it, for one store test file; `close` ends both. */
export async function startDynalite(opts: { createTableMs?: number } = {}): Promise<{ client: ReturnType<typeof makeDynamoClient>; close: () => Promise<void> }> {
  const db = dynalite({ createTableMs: opts.createTableMs ?? 0 });
  await new Promise<void>((resolve) => db.listen(0, '127.0.0.1', () => resolve()));
  const client = makeDynamoClient({ endpoint: `http://127.0.0.1:${(db.address() as AddressInfo).port}` });
  return {
    client,
    close: async () => {
      client.destroy();
      await new Promise<void>((resolve) => db.close(() => resolve()));
    },
  };
}
