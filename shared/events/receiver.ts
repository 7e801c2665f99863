import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import { Webhook } from 'standardwebhooks';
import { newSecret } from './deliver.js';
import type { EventStore } from './store.js';

/** One event the local receiver got, as `paybridge events tail` prints it. */
export interface Received {
  n: number;
  receivedAt: string;
  id: string;
  /** The signature checked against the endpoint's secret (Standard Webhooks, with its 5-minute tolerance). */
  verified: boolean;
  event: unknown;
}

/**
 * `npm start`'s event receiver (issue 21): a loopback endpoint registered for the dev caller, so a
 * newcomer sees events without writing one. It checks each delivery's signature as a caller's receiver
 * would, keeps the last 500, and shows them on `GET /received?after=N` (what `paybridge events tail` reads).
 */
export async function startReceiver(opts: { port: number; secret: () => string[] }): Promise<{ url: string; close(): Promise<void> }> {
  const kept: Received[] = [];
  let n = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      if (req.method === 'GET' && url.pathname === '/received') {
        const after = Number(url.searchParams.get('after') ?? 0);
        res.writeHead(200, { 'content-type': 'application/json' });
        return void res.end(JSON.stringify({ events: kept.filter((k) => k.n > after) }));
      }
      if (req.method !== 'POST') return void res.writeHead(405).end();
      const body = Buffer.concat(chunks).toString('utf8');
      const verified = opts.secret().some((s) => {
        try {
          new Webhook(s).verify(body, req.headers as Record<string, string>);
          return true;
        } catch {
          return false;
        }
      });
      let event: unknown;
      try {
        event = JSON.parse(body);
      } catch {
        event = { unparsed: body.slice(0, 200) };
      }
      kept.push({ n: ++n, receivedAt: new Date().toISOString(), id: String(req.headers['webhook-id'] ?? ''), verified, event });
      if (kept.length > 500) kept.shift();
      // A bad signature is refused as a caller's receiver must refuse it: paybridge then retries.
      res.writeHead(verified ? 204 : 400).end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, '127.0.0.1', () => resolve());
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/**
 * The dev caller's endpoint pointing at the receiver: registered on the first start, kept (with its
 * secret, in `file`, owner-only) and pointed at this start's receiver on later ones.
 */
export async function registerReceiver(store: EventStore, caller: string, url: string, file: string, now = Date.now()): Promise<{ id: string; secret: string }> {
  const saved = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { id: string; secret: string }) : undefined;
  const existing = saved ? await store.getEndpoint(saved.id) : undefined;
  if (saved && existing && existing.caller === caller) {
    if (existing.url !== url || existing.disabled) {
      const { disabled: _d, failingSince: _f, pausedUntil: _p, ...rest } = existing;
      await store.putEndpoint({ ...rest, url, updatedAt: new Date(now).toISOString() }, false);
    }
    return saved;
  }
  const stamp = new Date(now).toISOString();
  const made = { id: `ep_${randomBytes(12).toString('base64url')}`, secret: newSecret() };
  await store.putEndpoint({ id: made.id, caller, url, eventTypes: [], description: 'npm start: the local event receiver (paybridge events tail)', secrets: [{ secret: made.secret }], createdAt: stamp, createdMs: now, updatedAt: stamp }, true);
  writeFileSync(file, JSON.stringify(made), { mode: 0o600 });
  return made;
}
