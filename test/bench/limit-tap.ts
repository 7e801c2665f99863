/**
 * Loaded into `npm start`'s process by `npm run bench:limit` (`node --import tsx --import ./test/bench/limit-tap.ts
 * shared/local/start.ts`): counts the requests that reach the embedded DynamoDB (dynalite), by operation, and
 * answers them as JSON on a loopback port of their own (LIMIT_BENCH_TAP_PORT). Counting at the server sees
 * every client of it, as `onDynamoRequest` does in-process (shared/local/dynamo-tap.ts), without a hook in
 * the product's entry point. A request is DynamoDB's when it names a `DynamoDB_20120810.<Operation>` target.
 */
import { createServer, Server, type IncomingMessage } from 'node:http';

const port = Number(process.env.LIMIT_BENCH_TAP_PORT);
const counts: Record<string, number> = {};

/**
 * Whether a request is events out's (issue 21), not the payment's own: the events-index (pending marks,
 * events, due deliveries), the event, delivery and endpoint items, and the clear of a record's pending mark
 * (the one UpdateItem that removes `pendingEvents`). Everything else is the payment path's: claims, record
 * writes, the limiter, fences, the due index.
 */
function eventsOut(op: string, body: string): boolean {
  if (body.includes('"IndexName":"events-index"')) return true;
  if (/"pk":\{"S":"(event|delivery|endpoint|endpoints|due)#/.test(body)) return true;
  return op === 'UpdateItem' && body.includes('pendingEvents') && body.includes('REMOVE');
}
const emit = Server.prototype.emit;
Server.prototype.emit = function (this: Server, event: string | symbol, ...args: unknown[]): boolean {
  if (event === 'request') {
    const target = (args[0] as IncomingMessage).headers['x-amz-target'];
    if (typeof target === 'string' && target.startsWith('DynamoDB_')) {
      const op = target.slice(target.indexOf('.') + 1);
      counts[op] = (counts[op] ?? 0) + 1;
      // Each request is also counted by the part that made it (`part:events`, `part:payments`), read from the
      // body as dynalite reads it; with LIMIT_BENCH_TAP_DETAIL (`--verbose`) by table, index and key too.
      const chunks: Buffer[] = [];
      const req = args[0] as IncomingMessage;
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const part = `part:${eventsOut(op, body) ? 'events' : 'payments'}`;
        counts[part] = (counts[part] ?? 0) + 1;
        if (process.env.LIMIT_BENCH_TAP_DETAIL) {
          const tables = [...new Set([...body.matchAll(/"(?:TableName|IndexName)":"([^"]+)"/g)].map((m) => m[1]))];
          const pk = /"pk":\{"S":"([a-z-]+)[#/]/.exec(body)?.[1] ?? '';
          const key = `${op}:${tables.join('+') || '?'}${pk ? `:${pk}` : ''}`;
          counts[key] = (counts[key] ?? 0) + 1;
        }
      });
    }
  }
  return (emit as (this: Server, event: string | symbol, ...rest: unknown[]) => boolean).call(this, event, ...args);
} as typeof Server.prototype.emit;

if (Number.isInteger(port) && port > 0) {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(counts));
  });
  server.listen(port, '127.0.0.1');
  server.unref();
}
