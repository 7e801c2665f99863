import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Stack } from '../../shared/local/stack.js';
import { call as callAs, testStack } from '../helpers/stack.js';

interface RawReply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Sends raw bytes on a fresh loopback connection and reads until the server closes it (bounded). */
function raw(stack: Stack, bytes: Buffer | string, timeoutMs = 5_000): Promise<RawReply> {
  const { port } = new URL(stack.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete answer within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('utf8');
      const [head = '', body = ''] = text.split('\r\n\r\n', 2);
      const [statusLine = '', ...lines] = head.split('\r\n');
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body });
    });
    socket.write(bytes);
  });
}

describe('the local gateway answers its own 4xx with problem documents (issue 13)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await testStack();
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('headers over Node\'s 16 KiB: 431 application/problem+json', async () => {
    const r = await raw(stack, `GET /v1/payments/cambio/x HTTP/1.1\r\nhost: 127.0.0.1\r\nx-api-key: pb_dev_local_key\r\nx-pad: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(r.status).toBe(431);
    expect(r.headers['content-type']).toBe('application/problem+json');
    expect(JSON.parse(r.body)).toMatchObject({ status: 431, type: expect.stringMatching(/request-header-fields-too-large$/), detail: expect.stringContaining('16 KiB') });
  });

  it('raw non-ASCII bytes in the path: 400 application/problem+json', async () => {
    const r = await raw(stack, Buffer.concat([Buffer.from('GET /v1/payments/cambio/'), Buffer.from([0xc3, 0xa5, 0x00, 0x7f]), Buffer.from(' HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n')]));
    expect(r.status).toBe(400);
    expect(r.headers['content-type']).toBe('application/problem+json');
    expect(JSON.parse(r.body)).toMatchObject({ status: 400, type: expect.stringMatching(/bad-request$/) });
  });

  it('HEAD with raw non-ASCII bytes in the path: the 400 has headers only, as HEAD requires (issue 20 item 14)', async () => {
    const r = await raw(stack, Buffer.concat([Buffer.from('HEAD /v1/payments/cambio/'), Buffer.from([0xc3, 0xa5]), Buffer.from(' HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n')]));
    expect(r.status).toBe(400);
    expect(r.headers['content-type']).toBe('application/problem+json');
    // On main the problem document followed the headers: a HEAD client takes those bytes for the next
    // response and gives up on the connection.
    expect(r.body).toBe('');
  });

  it('a request that is not HTTP at all: 400 application/problem+json', async () => {
    const r = await raw(stack, 'HELLO\r\n\r\n');
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body).type).toMatch(/bad-request$/);
  });

  it('/__local/enqueue with invalid JSON, a non-object or no pk: 400 problems; an unknown hook: 404 problem', async () => {
    // The hooks answer operators (test/integration/local-hooks.test.ts): the stack's own operator key.
    const call = (s: Stack, method: string, path: string, body?: unknown) => callAs(s, method, path, body, { authorization: `Bearer ${s.operatorKey}` });
    const bad = await call(stack, 'POST', '/__local/enqueue', '{"pk":');
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toBe('application/problem+json');
    expect(bad.body.type).toMatch(/malformed-json$/);
    expect((await call(stack, 'POST', '/__local/enqueue', 'null')).status).toBe(400);
    const noPk = await call(stack, 'POST', '/__local/enqueue', { delaySeconds: 5000 });
    expect(noPk.status).toBe(400);
    expect(noPk.body.errors.map((e: { pointer: string }) => e.pointer)).toEqual(['#/pk', '#/delaySeconds']);
    const unknown = await call(stack, 'POST', '/__local/nope', {});
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('content-type')).toBe('application/problem+json');
    expect((await call(stack, 'POST', '/__local/enqueue', { pk: 'cambio#default#nothing' })).body).toEqual({ enqueued: 1 });
  });
});
