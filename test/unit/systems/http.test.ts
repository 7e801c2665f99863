import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { request, type Dispatcher } from 'undici';
import { makeDispatcher, observe } from '../../../shared/systems/http.js';

// shared/systems/http.ts uses undici's Agent and request API from their own modules, not the package
// entry (issue 23: cold start). These show they still behave as the entry's request() did.
describe('observe over the slim undici entry', () => {
  let server: Server;
  let url: string;
  let connections = 0;
  const hung = new Set<import('node:http').ServerResponse>();

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        if (req.url?.startsWith('/hang')) {
          hung.add(res); // never answered: the attempt's deadline must cut it
          return;
        }
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ method: req.method, path: req.url, body, clubId: req.headers.clubid ?? null }));
      });
    });
    server.on('connection', () => connections++);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(() => {
    for (const res of hung) res.destroy();
    hung.clear();
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('sends method, path with query, headers and body, and parses the JSON answer', async () => {
    const dispatcher = makeDispatcher();
    try {
      for (let i = 0; i < 2; i++) {
        const obs = await observe(dispatcher, { method: 'POST', url: `${url}/api/v1/payment?x=${i}`, headers: { 'content-type': 'application/json', ClubId: '4568' }, body: `{"n":${i}}` });
        expect(obs).toMatchObject({ kind: 'response', status: 201, body: { method: 'POST', path: `/api/v1/payment?x=${i}`, body: `{"n":${i}}`, clubId: '4568' } });
      }
    } finally {
      await dispatcher.close();
    }
  });

  it('reuses connections exactly as the package entry request() does', async () => {
    /** Connections opened by three POSTs and three GETs over one fresh pool. */
    const opened = async (send: (dispatcher: Dispatcher, method: 'GET' | 'POST') => Promise<unknown>) => {
      const dispatcher = makeDispatcher();
      const before = connections;
      try {
        for (const method of ['GET', 'GET', 'GET', 'POST', 'POST', 'POST'] as const) await send(dispatcher, method);
        return connections - before;
      } finally {
        await dispatcher.close();
      }
    };
    const slim = await opened((dispatcher, method) => observe(dispatcher, { method, url: `${url}/x`, headers: {}, ...(method === 'POST' ? { body: '{}' } : {}) }));
    const entry = await opened(async (dispatcher, method) => (await request(`${url}/x`, { method, dispatcher, ...(method === 'POST' ? { body: '{}' } : {}) })).body.text());
    expect(slim).toBe(entry);
    // The GETs share one socket: keep-alive works.
    expect(slim).toBeLessThan(6);
  });

  it('a hung downstream is cut at the attempt deadline, long before the headers timeout, and reported as ambiguous', async () => {
    const dispatcher = makeDispatcher();
    try {
      const started = Date.now();
      const obs = await observe(dispatcher, { method: 'POST', url: `${url}/hang`, headers: {}, body: '{}', signal: AbortSignal.timeout(300) }, { connectMs: 4_000, headersMs: 10_000, bodyMs: 10_000 });
      const took = Date.now() - started;
      expect(obs).toMatchObject({ kind: 'error', sent: true, code: 'DEADLINE' });
      expect(took).toBeGreaterThanOrEqual(250);
      // Generous for a busy machine, far below the 10 s headers timeout.
      expect(took).toBeLessThan(5_000);
    } finally {
      await dispatcher.destroy();
    }
  }, 15_000);

  it('the headers timeout still applies without a deadline', async () => {
    const dispatcher = makeDispatcher();
    try {
      const obs = await observe(dispatcher, { method: 'GET', url: `${url}/hang`, headers: {} }, { connectMs: 4_000, headersMs: 300, bodyMs: 300 });
      expect(obs).toMatchObject({ kind: 'error', sent: true, code: 'UND_ERR_HEADERS_TIMEOUT' });
    } finally {
      await dispatcher.destroy();
    }
  }, 15_000);

  it('a past deadline sends nothing; a refused connection is reported as not sent', async () => {
    const dispatcher = makeDispatcher();
    const before = connections;
    try {
      const aborted = AbortSignal.abort();
      expect(await observe(dispatcher, { method: 'POST', url: `${url}/x`, headers: {}, body: '{}', signal: aborted })).toMatchObject({ kind: 'error', sent: false, code: 'DEADLINE' });
      expect(connections).toBe(before);
      // A port nothing listens on (the server's own, once closed, could be taken again: use a fresh one).
      const closed = createServer();
      closed.listen(0, '127.0.0.1');
      await once(closed, 'listening');
      const port = (closed.address() as AddressInfo).port;
      await new Promise((resolve) => closed.close(resolve));
      expect(await observe(dispatcher, { method: 'POST', url: `http://127.0.0.1:${port}/x`, headers: {}, body: '{}' })).toMatchObject({ kind: 'error', sent: false, code: 'ECONNREFUSED' });
    } finally {
      await dispatcher.destroy();
    }
  }, 15_000);
});
