import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { CliContext } from '../../shared/cli/context.js';
import { runCli, type Io } from '../../shared/cli/main.js';
import { main } from '../../shared/cli/run.js';
import type { PaymentRecord } from '../../shared/core/types.js';
import type { Logger, LogFields } from '../../shared/log.js';
import type { Stack } from '../../shared/local/stack.js';
import { call, eventually, testStack } from '../helpers/stack.js';

/** Issue 22, item 8: what a newcomer met on main, one test each. */

const lines: { level: string; message: string; fields: LogFields }[] = [];
function capture(bound: LogFields = {}): Logger {
  const at = (level: string) => (message: string, fields?: LogFields) => void lines.push({ level, message, fields: { ...bound, ...fields } });
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: (f) => capture({ ...bound, ...f }) };
}

describe('what a newcomer met', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await testStack({ log: capture() });
  });
  afterAll(async () => {
    await stack?.close();
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  async function cli(argv: string[]) {
    const out: string[] = [];
    const io: Io = { out: (l) => out.push(l), err: (l) => out.push(l), progress: () => undefined, progressEnd: () => undefined, interactive: false, confirm: async () => true, clock: Date.now };
    const ctx = async (): Promise<CliContext> => ({ where: 'test stack', store: stack.deps.store, queue: stack.queue, fence: () => stack.deps.pacer.mintFence(), deadLetters: { count: async () => 0, redrive: async () => 0 } });
    const code = await runCli(argv, ctx, io);
    return { code, out: out.join('\n') };
  }

  it('a payment the downstream rejected is to be corrected under the same key, as the README says', async () => {
    const body = { status: 'PAID', contactId: 'ERROR-newcomer', paymentType: 'CARD' };
    let r = await call(stack, 'POST', '/v1/cambio/payment-notices', body);
    if (r.status === 202) {
      // A busy machine queued the first attempt: wait for the outcome, then the same delivery answers it.
      await eventually(async () => (await call(stack, 'GET', '/v1/payments/cambio/ERROR-newcomer')).body?.status === 'failed', 20_000);
      r = await call(stack, 'POST', '/v1/cambio/payment-notices', body);
    }
    expect(r.status).toBe(422);
    expect(r.body.type).toMatch(/rejected-downstream$/);
    expect(r.body.detail).toMatch(/under the same key/);
    expect(r.body.detail).not.toMatch(/new key/);
  });

  it('a held payment is logged at WARN with the downstream\'s reason and the settings to check', async () => {
    stack.cambio!.faults.push('403', '403');
    const r = await call(stack, 'POST', '/v1/cambio/payment-notices', { status: 'PAID', contactId: 'held-newcomer', paymentType: 'CARD' });
    expect([201, 202]).toContain(r.status);
    const line = await eventually(async () => lines.find((l) => l.message === 'attempt' && l.fields.status === 'held'), 20_000);
    expect(line.level).toBe('warn');
    expect(String(line.fields.reason)).toMatch(/scope/i);
    expect(String(line.fields.check)).toMatch(/CAMBIO_CLIENT_ID/);
  });

  it('payments show takes a key in the percent-encoded form its status URL prints', async () => {
    const now = Date.now();
    const key = 'visit 1/a';
    const record: PaymentRecord = {
      pk: `cambio#default#${key}`, system: 'cambio', tenant: 'default', key, status: 'posted', version: 1, revision: 1, budgetFrom: now, payloadHash: 'h',
      request: { status: 'PAID', contactId: key, paymentType: 'CARD' }, attempts: 1, failures: 0, checkpoints: {}, history: [{ at: new Date(now).toISOString(), event: 'received' }], correlationId: 'c',
      createdAt: new Date(now).toISOString(), createdMs: now, updatedAt: new Date(now).toISOString(), ttl: 0, result: { httpStatus: 200, body: {} },
    };
    await stack.deps.store.claim(record);
    const shown = await cli(['payments', 'show', 'cambio', encodeURIComponent(key)]);
    expect(shown.out).toContain('posted');
    expect(shown.code).toBe(0);
  });

  it('payments show says a resolved payment was resolved, without "HTTP 0" or "resolved: resolved"', async () => {
    const now = Date.now();
    const base = { system: 'cambio', tenant: 'default', version: 1, revision: 1, budgetFrom: now, payloadHash: 'h', request: { status: 'PAID', paymentType: 'CARD' }, attempts: 1, failures: 0, checkpoints: {}, correlationId: 'c', createdAt: new Date(now).toISOString(), createdMs: now, updatedAt: new Date(now).toISOString(), ttl: 0, history: [] };
    await stack.deps.store.claim({ ...base, pk: 'cambio#default#res-posted', key: 'res-posted', status: 'posted', result: { httpStatus: 0, body: { resolvedBy: 'ann', evidence: 'seen in Cambio' }, note: 'resolved as posted by ann: seen in Cambio' } });
    await stack.deps.store.claim({ ...base, pk: 'cambio#default#res-not', key: 'res-not', status: 'failed', error: { kind: 'resolved', message: 'resolved as not posted by ann: absent in Cambio' } });
    const posted = await cli(['payments', 'show', 'cambio', 'res-posted']);
    expect(posted.out).toMatch(/resolved as posted by ann/);
    expect(posted.out).not.toMatch(/HTTP 0/);
    const notPosted = await cli(['payments', 'show', 'cambio', 'res-not']);
    expect(notPosted.out).toMatch(/resolved as not posted by ann/);
    expect(notPosted.out).not.toMatch(/resolved: resolved/);
  });

  it('a usage error prints the one useful line and where help is, not the whole help', async () => {
    const written: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => (written.push(String(chunk)), true));
    expect(await main(['payments', 'list', '--stats'])).toBe(2);
    const text = written.join('');
    expect(text).toMatch(/Unknown option '--stats'/);
    expect(text.trim().split('\n').length).toBeLessThanOrEqual(3);
    expect(text).toMatch(/paybridge --help/);
  });

  it("sign's usage shows the running stack's URL, not port 3000", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pb-newcomer-'));
    const file = join(dir, 'local.json');
    writeFileSync(file, JSON.stringify({ apiUrl: 'http://127.0.0.1:4123', apiKey: 'k', dynamoEndpoint: 'http://127.0.0.1:1', tableName: 't', sandboxes: {} }));
    vi.stubEnv('PAYBRIDGE_LOCAL_FILE', file);
    const written: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => (written.push(String(chunk)), true));
    expect(await main(['sign', '/v1/cambio/payment-notices'])).toBe(2);
    vi.unstubAllEnvs();
    expect(written.join('')).toContain('http://127.0.0.1:4123');
    expect(written.join('')).not.toContain(':3000');
  });
});
