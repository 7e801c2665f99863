import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Shared parts of the sandbox simulators: a loopback HTTP server, a token-bucket rate limit, and
 * fault injection (one-shot faults queued through the control route, or random ones at a rate).
 */

/** `none` answers normally: it lets a test queue a fault for the second call of a step. */
export const FAULTS = ['none', '429', '500', '502', '503', '504', '401', '403', 'reset-before', 'reset-after', 'hang-after'] as const;
export type Fault = (typeof FAULTS)[number];

export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly perSecond: number,
    private readonly clock: () => number = Date.now,
    private readonly capacity = Math.max(1, perSecond),
  ) {
    this.tokens = this.capacity;
    this.last = clock();
  }

  /** Takes a token, or says how many ms until one is free. */
  take(): { ok: true } | { ok: false; waitMs: number } {
    const now = this.clock();
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.last) / 1000) * this.perSecond);
    this.last = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, waitMs: Math.ceil(((1 - this.tokens) / this.perSecond) * 1000) };
  }
}

/** A small seeded PRNG (mulberry32) so a run with random faults can be repeated. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class FaultPlan {
  private readonly queued: Fault[] = [];

  constructor(
    private rates: Partial<Record<Fault, number>> = {},
    private readonly random: () => number = seededRandom(42),
  ) {}

  push(...faults: Fault[]): void {
    this.queued.push(...faults);
  }

  setRates(rates: Partial<Record<Fault, number>>): void {
    this.rates = rates;
  }

  clear(): void {
    this.queued.length = 0;
    this.rates = {};
  }

  /** The fault for the next call, if any. */
  next(): Fault | undefined {
    const q = this.queued.shift();
    if (q) return q;
    let roll = this.random();
    for (const [fault, rate] of Object.entries(this.rates) as [Fault, number][]) {
      if (roll < rate) return fault;
      roll -= rate;
    }
    return undefined;
  }
}

/** "429:0.05,500:0.01" → { '429': 0.05, '500': 0.01 }; unknown faults are refused by name. */
export function parseFaultRates(text: string | undefined): Partial<Record<Fault, number>> {
  const out: Partial<Record<Fault, number>> = {};
  for (const part of (text ?? '').split(',').map((p) => p.trim()).filter(Boolean)) {
    const [name, rate] = part.split(':');
    if (!FAULTS.includes(name as Fault)) throw new Error(`unknown sandbox fault "${name}"; known: ${FAULTS.join(', ')}`);
    const r = Number(rate);
    if (!(r >= 0 && r <= 1)) throw new Error(`sandbox fault rate for ${name} must be between 0 and 1`);
    out[name as Fault] = r;
  }
  return out;
}

export async function readBody(req: IncomingMessage, limit = 1024 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new Error('body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export interface RunningServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1 only (port 0 picks a free one). Open sockets are destroyed on close. */
export async function listenLoopback(handler: (req: IncomingMessage, res: ServerResponse) => void, port = 0): Promise<RunningServer> {
  const server: Server = createServer(handler);
  const sockets = new Set<import('node:net').Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${actual}`,
    port: actual,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
