/**
 * dynalite in a process of its own, for `npm run bench`'s end-to-end intake comparison: in AWS the table
 * (and the upkeep of its indexes) lives in DynamoDB, not in the function, so its work must not sit on the
 * event loop of the handlers being compared. Forked by the bench (IPC): it answers `{ endpoint }` once it
 * listens on 127.0.0.1, and to `{ counts: 'take' }` with the requests by operation since the last take
 * (the bench's own reads, marked by asking for consumed capacity `INDEXES`, are not counted).
 */
import type { AddressInfo } from 'node:net';
import dynalite from 'dynalite';
import { tapDynalite } from '../../shared/local/dynamo-tap.js';

const BENCH_READ = 'INDEXES';
let byOp: Record<string, number> = {};
const db = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
tapDynalite(db, ({ operation, request }) => {
  if (request.ReturnConsumedCapacity !== BENCH_READ) byOp[operation] = (byOp[operation] ?? 0) + 1;
});
db.listen(0, '127.0.0.1', () => {
  process.send?.({ endpoint: `http://127.0.0.1:${(db.address() as AddressInfo).port}` });
});
process.on('message', (m: { counts?: 'take' }) => {
  if (m.counts === 'take') {
    process.send?.({ byOp });
    byOp = {};
  }
});
// The bench going away (or closing the channel) ends this process too.
process.on('disconnect', () => db.close(() => process.exit(0)));
