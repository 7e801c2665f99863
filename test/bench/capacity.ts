/**
 * `npm run capacity`: what one payment costs, measured on the local stack (docs/capacity.md).
 *
 * Every request that reaches dynalite is seen (startStack's onDynamoRequest) and priced as DynamoDB
 * on-demand would price it (test/helpers/dynamo-capacity.ts): write and read request units of the table
 * and of each index, with the item sizes behind them. Every retry-queue message is measured too. Per
 * system, three ways a payment meets the stack:
 *
 * - idle, sent by the route: one payment at a time into a quiet system; the route sends it in its own
 *   invocation, on its container's intake lane;
 * - idle, queued: one at a time again, each handed to the queue and sent by the worker;
 * - a burst, every payment queued and drained by the worker at the system's rate.
 *
 * Queued is what an intake container does when it holds no lane and no shared slot is free within its
 * wait, the common case in AWS once a system's arrivals pass its rate (one request per container, and
 * the lanes of two containers take the whole rate: shared/core/pacing.ts, grantLane). Locally one
 * process serves every request at once and its lane is shared, so for the queued parts the route's wait
 * is set below zero (`inlineWaitMs: -1`): no permit is ever soon enough.
 *
 * Sandboxes answer at 1,000 requests/s, so only paybridge's own pacing limits the drain. Then a few
 * single cases: a duplicate delivery, a status read, a webhook-signed delivery.
 *
 *   npm run capacity -- [--idle 5] [--burst 100] [--rate 50] [--systems cambio,nif] [--json]
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { Webhook } from 'standardwebhooks';
import { makeHandler as makeAuthorizer } from '../../functions/authorize.js';
import { parseApiKeys } from '../../shared/http/authorizer.js';
import { createLogger } from '../../shared/log.js';
import type { DynamoExchange } from '../../shared/local/dynamo-tap.js';
import { DEV_API_KEY, DEV_WEBHOOK_SECRET, startStack, type Stack } from '../../shared/local/stack.js';
import { memoryMetrics } from '../../shared/metrics.js';
import type { RetryMessage } from '../../shared/queue/port.js';
import { silenceSdkNodeVersionWarning } from '../../shared/quiet.js';
import { CapacityMeter, type Charge } from '../helpers/dynamo-capacity.js';
import { delivery, PAYLOAD_SYSTEMS, type Delivery, type PayloadSystem } from './payloads.js';

const { values } = parseArgs({
  options: {
    idle: { type: 'string', default: '5' },
    burst: { type: 'string', default: '100' },
    rate: { type: 'string', default: '50' },
    systems: { type: 'string', default: PAYLOAD_SYSTEMS.join(',') },
    json: { type: 'boolean', default: false },
  },
});
const whole = (name: string, text: string, min: number): number => {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be a whole number of at least ${min}, not "${text}"`);
  return n;
};
const IDLE = whole('idle', values.idle, 1);
const BURST = whole('burst', values.burst, 1);
const RATE = whole('rate', values.rate, 1);
const SYSTEMS = values.systems.split(',').map((s) => s.trim()) as PayloadSystem[];
for (const s of SYSTEMS) if (!PAYLOAD_SYSTEMS.includes(s)) throw new Error(`--systems: unknown system ${s} (${PAYLOAD_SYSTEMS.join(', ')})`);

interface Seen {
  exchange: DynamoExchange;
  charge: Charge;
}

const seen: Seen[] = [];
const meter = new CapacityMeter();
const messages: { system: string; bytes: number; reason: string }[] = [];

/** What a stretch of the run cost, per payment: requests by kind, units by table and index, messages. */
interface Cost {
  payments: number;
  requests: Record<string, number>;
  tableWrite: number;
  tableRead: number;
  indexWrite: Record<string, number>;
  indexRead: number;
  /** Index writes per index partition family (`<system>#due`, `<system>#retrying`, ...): what the shard count must carry. */
  indexWritesByFamily: Record<string, number>;
  messages: number;
  messageBytesMax: number;
  messageChunks: number;
}

/** The kind of item a request touched: the record, or the limiter, a fence, a webhook-id memory. */
function itemKind(pk: string | undefined): string {
  if (!pk) return 'batch';
  const head = pk.split('#')[0] as string;
  return ['limiter', 'fence', 'webhook'].includes(head) ? head : 'record';
}

function label(s: Seen): string {
  const index = typeof s.exchange.request.IndexName === 'string' ? ` ${s.exchange.request.IndexName}` : '';
  const kind = s.exchange.operation === 'Query' || s.exchange.operation === 'BatchGetItem' ? '' : ` ${itemKind(s.charge.pk)}`;
  return `${s.exchange.operation}${index}${kind}${s.charge.ok ? '' : ' (condition failed)'}`;
}

function costOf(part: Seen[], sent: typeof messages, payments: number): Cost {
  const cost: Cost = { payments, requests: {}, tableWrite: 0, tableRead: 0, indexWrite: {}, indexRead: 0, indexWritesByFamily: {}, messages: sent.length / payments, messageBytesMax: 0, messageChunks: 0 };
  for (const s of part) {
    const name = label(s);
    cost.requests[name] = (cost.requests[name] ?? 0) + 1 / payments;
    cost.tableWrite += s.charge.tableWrite / payments;
    cost.tableRead += s.charge.tableRead / payments;
    cost.indexRead += s.charge.indexRead / payments;
    for (const w of s.charge.indexWrites) {
      cost.indexWrite[w.index] = (cost.indexWrite[w.index] ?? 0) + w.units / payments;
      const family = `${w.index} ${w.partition.replace(/#\d+$/, '#<s>')}`;
      cost.indexWritesByFamily[family] = (cost.indexWritesByFamily[family] ?? 0) + 1 / payments;
    }
  }
  for (const m of sent) {
    cost.messageBytesMax = Math.max(cost.messageBytesMax, m.bytes);
    // SQS bills every started 64 KB of a payload as one request.
    cost.messageChunks += Math.ceil(m.bytes / 65_536) / payments;
  }
  return cost;
}

async function send(stack: Stack, d: Delivery, extra: Record<string, string> = {}): Promise<{ status: number; ms: number }> {
  const body = JSON.stringify(d.body);
  const t0 = performance.now();
  const res = await fetch(`${stack.url}${d.path}`, {
    method: d.method,
    headers: { 'content-type': 'application/json', ...(extra['webhook-id'] ? {} : { 'x-api-key': DEV_API_KEY }), ...d.headers, ...extra },
    body,
    signal: AbortSignal.timeout(30_000),
  });
  await res.text();
  return { status: res.status, ms: performance.now() - t0 };
}

/** The stack's queues empty and nothing in flight: every payment sent so far is settled. Bounded. */
async function quiet(stack: Stack, timeoutMs = 120_000): Promise<void> {
  if (!(await stack.queue.idle(timeoutMs))) throw new Error(`the queues did not drain within ${timeoutMs} ms`);
  // The last settle's answer may still be on its way back from dynalite.
  await new Promise((r) => setTimeout(r, 100));
}

const percentile = (xs: number[], p: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted.length === 0 ? NaN : (sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number);
};

/** Per queued payment: from the worker consuming its fence to its outcome written (slot wait included). */
function workerHoldMs(part: Seen[]): number[] {
  const claims = new Map<string, { id: string; n: number }>();
  const consumed = new Map<string, number>();
  const settled = new Map<string, number>();
  for (const s of part) {
    const { operation, request } = s.exchange;
    if (!s.charge.ok || !s.charge.pk) continue;
    if (operation === 'PutItem' && itemKind(s.charge.pk) === 'record') {
      const fence = (request.Item as Record<string, { M?: Record<string, { S?: string; N?: string }> }>).fence?.M;
      if (fence?.id?.S && fence.n?.N && !claims.has(s.charge.pk)) claims.set(s.charge.pk, { id: fence.id.S, n: Number(fence.n.N) });
      settled.set(s.charge.pk, s.exchange.endedAt);
    }
    if (operation === 'UpdateItem' && itemKind(s.charge.pk) === 'fence') {
      const id = s.charge.pk.slice('fence#'.length);
      for (const attr of Object.values((request.ExpressionAttributeNames ?? {}) as Record<string, string>)) {
        const m = /^c(\d+)$/.exec(attr);
        if (m) consumed.set(`${id}/${m[1]}`, s.exchange.startedAt);
      }
    }
  }
  const holds: number[] = [];
  for (const [pk, fence] of claims) {
    const from = consumed.get(`${fence.id}/${fence.n}`);
    const to = settled.get(pk);
    if (from !== undefined && to !== undefined && to > from) holds.push(to - from);
  }
  return holds;
}

async function main(): Promise<void> {
  silenceSdkNodeVersionWarning();
  const metrics = memoryMetrics();
  const rate = String(RATE);
  const stack = await startStack({
    port: 0,
    sweepIntervalMs: false,
    kontantanalysSyncIntervalMs: false,
    env: { LOG_LEVEL: 'silent', API_KEYS: DEV_API_KEY, CAMBIO_MAX_RPS: rate, NIF_MAX_RPS: rate, BRP_MAX_RPS: rate, KONTANTANALYS_MAX_RPS: rate },
    cambio: { ratePerSecond: 1000 },
    nif: { ratePerSecond: 1000 },
    brp: { ratePerSecond: 1000 },
    kontantanalys: { ratePerSecond: 1000, seededProviders: 50 },
    onDynamoRequest: (exchange) => seen.push({ exchange, charge: meter.charge(exchange) }),
  });
  // Measured where the engine sends them, before the local queue takes them.
  const sendMessage = stack.queue.send.bind(stack.queue);
  stack.queue.send = async (message: RetryMessage, delaySeconds: number) => {
    messages.push({ system: message.system, bytes: Buffer.byteLength(JSON.stringify(message), 'utf8'), reason: message.reason });
    return sendMessage(message, delaySeconds);
  };
  for (const d of stack.workerDeps) d.metrics = metrics;
  const run = randomUUID().slice(0, 8);
  const report: Record<string, unknown> = { rate: RATE, idle: IDLE, burst: BURST };
  const out: string[] = [];
  const fmt = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(2));
  const describe = (title: string, cost: Cost, extra: string[] = []) => {
    out.push(`  ${title}`);
    out.push(`    requests per payment: ${Object.entries(cost.requests).sort().map(([k, v]) => `${k} ${fmt(v)}`).join(', ')}`);
    out.push(`    table: ${fmt(cost.tableWrite)} WRU, ${fmt(cost.tableRead)} RRU; indexes: ${Object.entries(cost.indexWrite).sort().map(([k, v]) => `${k} ${fmt(v)} WRU`).join(', ') || 'no writes'}, ${fmt(cost.indexRead)} RRU`);
    out.push(`    index writes by partition family: ${Object.entries(cost.indexWritesByFamily).sort().map(([k, v]) => `${k} ${fmt(v)}`).join(', ') || 'none'}`);
    out.push(`    queue messages: ${fmt(cost.messages)} per payment (billed 64 KB chunks ${fmt(cost.messageChunks)}), largest ${cost.messageBytesMax} bytes`);
    for (const line of extra) out.push(`    ${line}`);
  };

  try {
    for (const system of SYSTEMS) {
      out.push(`\n${system}`);
      const inlineWaitMs = stack.deps.settings.inlineWaitMs;
      /** One payment at a time, each settled before the next; the first also pays for warming up (limiter read, token, lane lease). */
      const oneByOne = async (tag: string) => {
        const each: { cost: Cost; ms: number; holdMs: number[]; sequence: string[] }[] = [];
        for (let i = 0; i < IDLE; i++) {
          const d = delivery(system, `cap-${run}-${tag}-${i}`);
          const from = seen.length;
          const fromMessages = messages.length;
          const r = await send(stack, d);
          if (r.status >= 300) throw new Error(`${system} payment answered ${r.status}`);
          await quiet(stack);
          const part = seen.slice(from);
          each.push({
            cost: costOf(part, messages.slice(fromMessages), 1),
            ms: r.ms,
            holdMs: workerHoldMs(part),
            sequence: part.map((s) => `${label(s)} ${s.charge.bytesBefore !== undefined ? `${s.charge.bytesBefore}->` : ''}${s.charge.bytes} B: ${fmt(s.charge.tableWrite + s.charge.tableRead)} RU${s.charge.indexWrites.map((w) => ` +${w.index} ${w.kind} ${w.partition}`).join('')}`),
          });
        }
        const last = each[each.length - 1];
        if (!last) throw new Error('no payment was measured');
        return { last, later: each.length > 1 ? each.slice(1) : each };
      };

      const inline = await oneByOne('inline');
      out.push(`  idle, sent by the route (the last of ${IDLE}); its DynamoDB requests in order:`);
      for (const line of inline.last.sequence) out.push(`    ${line}`);
      const inlineCost = average(inline.later.map((x) => x.cost));
      describe(`idle, sent by the route: payments 2..${IDLE} on average`, inlineCost, [`intake latency (request to reply): ${inline.later.map((x) => x.ms.toFixed(1)).join(', ')} ms`]);

      // No permit is ever soon enough: every payment goes to the queue (see the head of this file).
      stack.deps.settings.inlineWaitMs = -1;
      const queuedOne = await oneByOne('queued');
      out.push(`  idle, queued (the last of ${IDLE}); its DynamoDB requests in order:`);
      for (const line of queuedOne.last.sequence) out.push(`    ${line}`);
      const queuedOneCost = average(queuedOne.later.map((x) => x.cost));
      const queuedOneHold = queuedOne.later.flatMap((x) => x.holdMs);
      describe(`idle, queued: payments 2..${IDLE} on average`, queuedOneCost, [
        `intake latency (request to reply): ${queuedOne.later.map((x) => x.ms.toFixed(1)).join(', ')} ms`,
        `worker holds the payment (fence consumed to outcome written): ${queuedOneHold.map((x) => x.toFixed(0)).join(', ')} ms`,
      ]);

      // Queued burst: drained by the worker at the system's rate.
      const fromB = seen.length;
      const fromMessagesB = messages.length;
      const latencies: number[] = [];
      const statuses: Record<number, number> = {};
      const started = performance.now();
      let next = 0;
      await Promise.all(
        Array.from({ length: Math.min(50, BURST) }, async () => {
          while (next < BURST) {
            const d = delivery(system, `cap-${run}-burst-${next++}`);
            const r = await send(stack, d);
            latencies.push(r.ms);
            statuses[r.status] = (statuses[r.status] ?? 0) + 1;
          }
        }),
      );
      const acceptedMs = performance.now() - started;
      await quiet(stack);
      const drainedMs = performance.now() - started;
      stack.deps.settings.inlineWaitMs = inlineWaitMs;
      const part = seen.slice(fromB);
      const backlog = costOf(part, messages.slice(fromMessagesB), BURST);
      const holds = workerHoldMs(part);
      describe(`queued: ${BURST} at once (50 requests in flight), drained at ${RATE}/s`, backlog, [
        `replies: ${Object.entries(statuses).map(([s, c]) => `${s}×${c}`).join(' ')}; accepted in ${(acceptedMs / 1000).toFixed(1)} s, drained in ${(drainedMs / 1000).toFixed(1)} s`,
        `intake latency p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms (one process on 2 cores serving 50 at once)`,
        `worker holds a queued payment (fence consumed to outcome written): ${holds.length} payments, p50 ${percentile(holds, 50).toFixed(0)} ms, min ${percentile(holds, 0).toFixed(0)} ms, p99 ${percentile(holds, 99).toFixed(0)} ms`,
      ]);
      report[system] = {
        inlineSequence: inline.last.sequence,
        inline: inlineCost,
        inlineLatencyMs: inline.later.map((x) => x.ms),
        queuedSequence: queuedOne.last.sequence,
        queued: queuedOneCost,
        queuedLatencyMs: queuedOne.later.map((x) => x.ms),
        queuedHoldMs: queuedOneHold,
        burst: backlog,
        burstLatencyMs: { p50: percentile(latencies, 50), p99: percentile(latencies, 99) },
        burstHoldMs: { n: holds.length, p50: percentile(holds, 50), min: percentile(holds, 0), p99: percentile(holds, 99) },
        burstDrainMs: drainedMs,
      };
    }

    // Single cases, on Cambio.
    out.push('\nsingle cases (cambio)');
    const first = delivery('cambio', `cap-${run}-single`);
    await send(stack, first);
    await quiet(stack);
    const single = async (title: string, act: () => Promise<unknown>) => {
      const from = seen.length;
      const fromMessages = messages.length;
      await act();
      await quiet(stack);
      const part = seen.slice(from);
      out.push(`  ${title}: ${part.map((s) => `${label(s)} ${s.charge.bytes} B ${fmt(s.charge.tableWrite + s.charge.tableRead + s.charge.indexRead)} RU`).join('; ')}; messages ${messages.length - fromMessages}`);
      report[title] = part.map((s) => ({ request: label(s), bytes: s.charge.bytes, charge: s.charge }));
    };
    await single('duplicate delivery of a posted key', () => send(stack, first));
    await single('status route read', () => fetch(`${stack.url}/v1/payments/cambio/${encodeURIComponent(first.key)}`, { headers: { 'x-api-key': DEV_API_KEY } }).then((r) => r.text()));
    const signed = delivery('cambio', `cap-${run}-signed`);
    const at = new Date();
    const id = `msg_${run}`;
    const signature = new Webhook(DEV_WEBHOOK_SECRET).sign(id, at, JSON.stringify(signed.body));
    await single('webhook-signed delivery (new key)', () => send(stack, signed, { 'webhook-id': id, 'webhook-timestamp': String(Math.floor(at.getTime() / 1000)), 'webhook-signature': signature }));
    await single('the same signed delivery again (a terminal retrying)', () => send(stack, signed, { 'webhook-id': id, 'webhook-timestamp': String(Math.floor(at.getTime() / 1000)), 'webhook-signature': signature }));

    // Item sizes as stored, from the meter's shadow of the table.
    out.push('\nitems as stored now (bytes, DynamoDB item size)');
    const sizes: Record<string, number> = {};
    for (const s of seen) if (s.charge.pk && (s.exchange.operation === 'PutItem' || s.exchange.operation === 'UpdateItem') && s.charge.ok) sizes[s.charge.pk] = s.charge.bytes;
    for (const kind of ['limiter', 'fence', 'webhook']) {
      const of = Object.entries(sizes).filter(([pk]) => pk.startsWith(`${kind}#`)).map(([, b]) => b);
      if (of.length > 0) out.push(`  ${kind}: ${of.length} items, ${Math.min(...of)}..${Math.max(...of)} B`);
    }
    for (const system of SYSTEMS) {
      const of = Object.entries(sizes).filter(([pk]) => pk.startsWith(`${system}#`)).map(([, b]) => b);
      if (of.length > 0) out.push(`  ${system} records: ${of.length}, median ${percentile(of, 50)} B, max ${Math.max(...of)} B`);
    }
    // A fence item grows by one attribute per consumed attempt: its size per entry sets the cost of late consumes.
    const fenceGrowth = seen.filter((s) => s.exchange.operation === 'UpdateItem' && itemKind(s.charge.pk) === 'fence' && s.charge.ok && s.charge.bytesBefore);
    const perEntry = fenceGrowth.map((s) => {
      const entries = Object.values((s.exchange.request.ExpressionAttributeNames ?? {}) as Record<string, string>).filter((n) => /^c\d+$/.test(n)).length;
      return (s.charge.bytes - (s.charge.bytesBefore ?? 0)) / Math.max(1, entries);
    });
    if (perEntry.length > 0) out.push(`  fence growth: ${percentile(perEntry, 50).toFixed(1)} B per consumed attempt (median of ${perEntry.length} consumes)`);
    const posts = Object.entries(metrics.counts);
    out.push(`\ndownstream call latency (sandbox, loopback): ${SYSTEMS.map((s) => {
      const sum = posts.find(([k]) => k === `${s}.post_latency`)?.[1] ?? 0;
      const n = posts.filter(([k]) => k.startsWith(`${s}.`) && /\.(posted|retried|rate_limited|failed|held|unknown)$/.test(k)).reduce((a, [, v]) => a + v, 0);
      return `${s} ${n > 0 ? (sum / n).toFixed(1) : '?'} ms`;
    }).join(', ')}`);
    report.sizes = sizes;

    // The authorizer runs before every request (caching off): its own time, warm, keys already read.
    const fixture = JSON.parse(readFileSync(new URL('../../events/authorizer-request.json', import.meta.url), 'utf8')) as APIGatewayRequestAuthorizerEvent;
    const keys = parseApiKeys('pos=key-pos,pos-web=key-web');
    const authorize = makeAuthorizer(() => ({ keys: async () => keys, gate: { callers: new Set(['pos', 'pos-web']), usageKey: (c) => `usage-${c}` }, clock: Date.now, log: createLogger({}, 'silent') }));
    const authMs: number[] = [];
    for (let i = 0; i < 2_000; i++) {
      const t0 = performance.now();
      await authorize({ ...fixture, headers: { 'x-api-key': 'key-web' } });
      authMs.push(performance.now() - t0);
    }
    out.push(`authorizer decision, in process, warm: p50 ${percentile(authMs, 50).toFixed(3)} ms, p99 ${percentile(authMs, 99).toFixed(3)} ms (${authMs.length} x-api-key requests)`);
    report.authorizerMs = { p50: percentile(authMs, 50), p99: percentile(authMs, 99) };
  } finally {
    await stack.close();
  }
  process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : `paybridge capacity: per-payment requests and units on the local stack (rates ${RATE}/s, sandboxes 1000/s)${out.join('\n')}\n`);
}

function average(costs: Cost[]): Cost {
  const n = costs.length;
  const sum = (f: (c: Cost) => number) => costs.reduce((a, c) => a + f(c), 0) / n;
  const merge = (f: (c: Cost) => Record<string, number>) => {
    const out: Record<string, number> = {};
    for (const c of costs) for (const [k, v] of Object.entries(f(c))) out[k] = (out[k] ?? 0) + v / n;
    return out;
  };
  return {
    payments: n,
    requests: merge((c) => c.requests),
    tableWrite: sum((c) => c.tableWrite),
    tableRead: sum((c) => c.tableRead),
    indexWrite: merge((c) => c.indexWrite),
    indexRead: sum((c) => c.indexRead),
    indexWritesByFamily: merge((c) => c.indexWritesByFamily),
    messages: sum((c) => c.messages),
    messageBytesMax: Math.max(...costs.map((c) => c.messageBytesMax)),
    messageChunks: sum((c) => c.messageChunks),
  };
}

main().catch((err: Error) => {
  process.stderr.write(`capacity failed: ${err.stack}\n`);
  process.exit(2);
});
