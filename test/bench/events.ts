/**
 * Issue 21's benchmark: N Cambio payments posted through the local stack (in-process: dynalite, queue,
 * sandbox) with a live receiver registered as an endpoint. Reports whether every posted payment produced
 * exactly one `payment.posted` event id, each delivered at least once; p50/p99 from the status change
 * (the event's timestamp: the write that stamped it) to the receiver's 2xx; and DynamoDB writes per
 * payment, those to payment records apart from the ones events out adds (event, deliveries, clears).
 * `--outage S` keeps the receiver down for the first S seconds (the schedule's 5 s and 5 min retries
 * then deliver: a long outage takes minutes).
 *
 *   npm run bench:events                         (defaults: 1000 payments, 50 at a time)
 *   npm run bench:events -- --n 200 --concurrency 20 --outage 0
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { Webhook } from 'standardwebhooks';
import { DEV_API_KEY, startStack } from '../../shared/local/stack.js';
import { silenceSdkNodeVersionWarning } from '../../shared/quiet.js';
import { CAMBIO_TENANT } from '../../shared/systems/cambio/describe.js';

silenceSdkNodeVersionWarning();
const { values } = parseArgs({ options: { n: { type: 'string', default: '1000' }, concurrency: { type: 'string', default: '50' }, outage: { type: 'string', default: '0' }, limit: { type: 'string', default: '600' } } });
const N = Number(values.n);
const CONCURRENCY = Number(values.concurrency);
const OUTAGE_MS = Number(values.outage) * 1000;
const LIMIT_MS = Number(values.limit) * 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (xs: number[], p: number) => (xs.length ? ([...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] as number) : NaN);

let writes = { record: 0, events: 0 };
const stack = await startStack({
  port: 0,
  sweepIntervalMs: 5_000,
  env: { LOG_LEVEL: 'silent', API_KEYS: `bench=${DEV_API_KEY}` },
  cambio: { ratePerSecond: 1000 },
  onDynamoRequest: (e) => {
    if (!['PutItem', 'UpdateItem', 'DeleteItem'].includes(e.operation) || e.status !== 200) return;
    const pk = String((((e.request.Item ?? e.request.Key) as Record<string, { S?: string }> | undefined)?.pk?.S) ?? '');
    if (/^(event|delivery|endpoint)#/.test(pk)) writes.events++;
    else if (pk.startsWith('cambio#')) {
      // A clear of the pending mark is an UpdateItem on the record: events out's, not the engine's.
      if (e.operation === 'UpdateItem' && String(e.request.UpdateExpression ?? '').startsWith('REMOVE #k, #a, pendingEvents')) writes.events++;
      else writes.record++;
    }
  },
});

let secret = '';
let up = OUTAGE_MS === 0;
const received = new Map<string, { key: string; type: string; at: number; lagMs: number; verified: boolean; copies: number }>();
const receiver: Server = createServer((req, res) => {
  let body = '';
  req.on('data', (c: Buffer) => (body += c.toString('utf8')));
  req.on('end', () => {
    if (!up) return void res.writeHead(503).end();
    const now = Date.now();
    let verified = true;
    try {
      new Webhook(secret).verify(body, req.headers as Record<string, string>);
    } catch {
      verified = false;
    }
    const e = JSON.parse(body) as { id: string; type: string; timestamp: string; data: { key: string } };
    const seen = received.get(e.id);
    if (seen) seen.copies++;
    else received.set(e.id, { key: e.data.key, type: e.type, at: now, lagMs: now - Date.parse(e.timestamp), verified, copies: 1 });
    res.writeHead(204).end();
  });
});
await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
const hook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
const made = await (await fetch(`${stack.url}/v1/event-endpoints`, { method: 'POST', headers: { 'x-api-key': DEV_API_KEY, 'content-type': 'application/json' }, body: JSON.stringify({ url: hook, eventTypes: ['payment.posted'] }) })).json();
secret = (made as { secret: string }).secret;
if (OUTAGE_MS > 0) setTimeout(() => (up = true), OUTAGE_MS);

writes = { record: 0, events: 0 };
const run = `ev${Date.now().toString(36)}`;
const keys = Array.from({ length: N }, (_, i) => `${run}-${i}`);
const started = Date.now();
let next = 0;
await Promise.all(
  Array.from({ length: CONCURRENCY }, async () => {
    while (next < keys.length) {
      const key = keys[next++] as string;
      // A sender re-delivers what got no answer (a reset keep-alive socket under load): the same key, the same payment.
      for (let attempt = 0; attempt < 5; attempt++) {
        try {
          await fetch(`${stack.url}/v1/cambio/payment-notices`, { method: 'POST', headers: { 'x-api-key': DEV_API_KEY, 'content-type': 'application/json' }, body: JSON.stringify({ status: 'PAID', contactId: key, paymentType: 'CARD' }) });
          break;
        } catch {
          await sleep(200);
        }
      }
    }
  }),
);
const postedKeys = new Set<string>();
const deadline = started + LIMIT_MS;
while (Date.now() < deadline) {
  postedKeys.clear();
  for (let i = 0; i < keys.length; i += 100) {
    const recs = await stack.deps.store.getMany(keys.slice(i, i + 100).map((k) => `cambio#${CAMBIO_TENANT}#${k}`));
    for (const r of recs.values()) if (r.status === 'posted') postedKeys.add(r.key);
  }
  const delivered = new Set([...received.values()].map((r) => r.key));
  if (postedKeys.size === keys.length && [...postedKeys].every((k) => delivered.has(k))) break;
  await sleep(500);
}
const events = [...received.values()].filter((r) => r.type === 'payment.posted');
const idsPerKey = new Map<string, number>();
for (const e of events) idsPerKey.set(e.key, (idsPerKey.get(e.key) ?? 0) + 1);
const lags = events.map((e) => e.lagMs);
const report = {
  payments: N,
  posted: postedKeys.size,
  eventsDelivered: events.length,
  exactlyOneIdPerPostedPayment: [...postedKeys].every((k) => idsPerKey.get(k) === 1),
  everyPostedDelivered: [...postedKeys].every((k) => idsPerKey.has(k)),
  signaturesValid: events.every((e) => e.verified),
  copiesBeyondFirst: events.reduce((s, e) => s + e.copies - 1, 0),
  statusChangeTo2xxMs: { p50: pct(lags, 50), p99: pct(lags, 99), max: Math.max(...lags) },
  dynamoWritesPerPayment: { records: +(writes.record / N).toFixed(2), eventsOut: +(writes.events / N).toFixed(2) },
  outageSeconds: OUTAGE_MS / 1000,
  seconds: Math.round((Date.now() - started) / 100) / 10,
};
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
await stack.close();
receiver.closeAllConnections();
receiver.close();
process.exit(report.exactlyOneIdPerPostedPayment && report.everyPostedDelivered ? 0 : 1);
