import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Stack } from '../../shared/local/stack.js';
import { testStack } from '../helpers/stack.js';

/**
 * A POST to a local hook with the headers given (no default key), and its status and JSON body. Through
 * node:http, not fetch: fetch sets Host itself, and the Host is what a DNS-rebinding page controls.
 */
function hook(stack: Stack, path: string, headers: Record<string, string>, body: unknown = {}): Promise<{ status: number; body: any }> {
  const { port } = new URL(stack.url);
  const text = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: Number(port), method: 'POST', path: `/__local/${path}`, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers }, timeout: 10_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const answer = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, body: answer ? JSON.parse(answer) : undefined });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', reject);
    req.end(text);
  });
}

describe('local hooks answer operators only, on loopback names only (issue 20 item 3)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await testStack({ env: { API_KEYS: 'pos=pb_dev_local_key,bob=bob-key-0123456789', OPERATOR_KEYS: 'ops=ops-key-0123456789abcdef,watch:viewer=viewer-key-0123456789' } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('a caller key, even the published dev key, gets 401 from every hook; invoke-env hands out nothing', async () => {
    for (const key of ['pb_dev_local_key', 'bob-key-0123456789']) {
      for (const path of ['invoke-env', 'enqueue', 'dlq', 'dlq/redrive']) {
        const r = await hook(stack, path, { 'x-api-key': key }, path === 'enqueue' ? { pk: 'cambio#default#x' } : {});
        expect(r.status, `${path} with a caller key`).toBe(401);
        expect(JSON.stringify(r.body)).not.toContain('CLIENT_SECRET');
      }
    }
  });

  it('an operator key opens them; a viewer may count dead letters but not act', async () => {
    const ops = { authorization: 'Bearer ops-key-0123456789abcdef' };
    const env = await hook(stack, 'invoke-env', ops);
    expect(env.status).toBe(200);
    expect(env.body.env.API_KEYS).toBe('pos=pb_dev_local_key,bob=bob-key-0123456789');
    const viewer = { authorization: 'Bearer viewer-key-0123456789' };
    expect((await hook(stack, 'dlq', viewer)).body).toEqual({ count: 0 });
    for (const path of ['invoke-env', 'enqueue', 'dlq/redrive']) expect((await hook(stack, path, viewer, { pk: 'cambio#default#x' })).status, path).toBe(403);
  });

  it('a Host that is not a loopback name with this port is refused before any key is looked at (DNS rebinding)', async () => {
    const { port } = new URL(stack.url);
    for (const host of [`evil.example:${port}`, `127.0.0.1.nip.io:${port}`, 'localhost:1', 'localhost']) {
      const r = await hook(stack, 'invoke-env', { authorization: 'Bearer ops-key-0123456789abcdef', host });
      expect(r.status, host).toBe(403);
      expect(r.body.type).toMatch(/host-not-allowed$/);
    }
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, `LOCALHOST:${port}`]) {
      expect((await hook(stack, 'dlq', { authorization: 'Bearer ops-key-0123456789abcdef', host })).status, host).toBe(200);
    }
  });
});
