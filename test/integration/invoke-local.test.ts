import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, ROOT, startLocal, tempDir, type Started } from '../helpers/start.js';

interface Invoked {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Issue 15: `serverless invoke local --path events/<file>` failed (RETRY_QUEUE_URL is a CloudFormation
 * reference, osls asked CloudFormation for it with AWS credentials; the bundle is ESM, which osls's
 * require() could not load). Against a running local stack it now runs each handler with that stack's
 * environment, no AWS credentials anywhere.
 */
describe('serverless invoke local against the running local stack', () => {
  const tmp = tempDir('paybridge-invoke-');
  let stack: Started;
  let apiUrl: string;
  const localFile = join(tmp.dir, 'local.json');
  // No AWS anything: were a credential looked up, or AWS called, these would make it fail rather than hang.
  const env = {
    ...process.env,
    PAYBRIDGE_LOCAL_FILE: localFile,
    AWS_ACCESS_KEY_ID: '',
    AWS_SECRET_ACCESS_KEY: '',
    AWS_PROFILE: '',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: join(tmp.dir, 'no-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(tmp.dir, 'no-credentials'),
  };

  function invoke(fn: string, event: string): Promise<Invoked> {
    return new Promise((resolve) => {
      execFile(process.execPath, ['node_modules/serverless/bin/serverless.js', 'invoke', 'local', '-f', fn, '--path', `events/${event}`], { cwd: ROOT, env, timeout: 120_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
  }
  /** The handler's answer: the last JSON document osls prints (the log lines come before it). */
  const answer = (r: Invoked) => JSON.parse(r.stdout.slice(r.stdout.lastIndexOf('\n{\n') + 1)) as { statusCode: number; headers: Record<string, string>; body: string };

  beforeAll(async () => {
    stack = startLocal({ PORT: String(await freePort()), PAYBRIDGE_DATA_DIR: join(tmp.dir, 'dynalite'), PAYBRIDGE_LOCAL_FILE: localFile, LOG_FORMAT: 'json' });
    await stack.waitFor(/paybridge is running on/);
    apiUrl = (JSON.parse(readFileSync(localFile, 'utf8')) as { apiUrl: string }).apiUrl;
  }, 60_000);
  afterAll(async () => {
    try {
      await stack?.stop();
    } finally {
      tmp.remove();
    }
  });

  it('npm start names the file of its hash key in local.json, so the CLI hashes as the stack does', () => {
    const file = (JSON.parse(readFileSync(localFile, 'utf8')) as { logHashKeyFile?: string }).logHashKeyFile;
    // On main the stack had put its key into the environment before local.json was written, so it never named the file.
    expect(file).toBe(join(tmp.dir, 'log-hash-key'));
    expect(readFileSync(file as string, 'utf8').trim().length).toBeGreaterThanOrEqual(16);
  });

  it('a payment route posts through the stack\'s sandbox, and its retry message reaches the stack\'s queue', async () => {
    const sandbox = (JSON.parse(readFileSync(localFile, 'utf8')) as { sandboxes: { cambio: string } }).sandboxes.cambio;
    // The first call is refused before anything is done (503): the payment is queued for a retry, through SQS.
    expect((await fetch(`${sandbox}/__sandbox/faults`, { method: 'POST', body: '{"faults":["503"]}', signal: AbortSignal.timeout(5_000) })).status).toBe(204);
    const posted = await invoke('cambioPaymentNotice', 'cambio-payment-notice.json');
    expect(posted.code, posted.stderr + posted.stdout).toBe(0);
    const reply = answer(posted);
    expect(reply.statusCode).toBe(202);
    expect(JSON.parse(reply.body)).toMatchObject({ key: 'event-fixture-1', status: 'retrying' });
    expect(posted.stdout + posted.stderr).not.toMatch(/credential|CloudFormation|NodeVersionSupportWarning/i);

    // The message went to the local SQS endpoint; the stack's own worker posts the payment.
    const deadline = Date.now() + 20_000;
    let status = '';
    while (Date.now() < deadline && status !== 'posted') {
      const res = await fetch(`${apiUrl}/v1/payments/cambio/event-fixture-1`, { headers: { 'x-api-key': 'pb_dev_local_key' }, signal: AbortSignal.timeout(5_000) });
      status = ((await res.json()) as { status: string }).status;
      if (status !== 'posted') await new Promise((r) => setTimeout(r, 200));
    }
    expect(status).toBe('posted');
  }, 150_000);

  it('a read route answers from the stack\'s records', async () => {
    const read = await invoke('getPayment', 'get-payment.json');
    expect(read.code, read.stderr + read.stdout).toBe(0);
    const reply = answer(read);
    expect(reply.statusCode).toBe(200);
    expect(JSON.parse(reply.body)).toMatchObject({ key: 'event-fixture-1', status: 'posted' });
  }, 150_000);

  it('a retry worker reads the event file\'s message, signed with the stack\'s key as its queue would sign it (issue 20 item 4)', async () => {
    const r = await invoke('retryCambio', 'retry-message.json');
    expect(r.code, r.stderr + r.stdout).toBe(0);
    // Unsigned, the worker would report it as failed (test/integration/events.test.ts).
    expect(JSON.parse(r.stdout.slice(r.stdout.lastIndexOf('\n{\n') + 1))).toEqual({ batchItemFailures: [] });
  }, 150_000);

  it('the authorizer, which only API Gateway calls, is declined in a sentence rather than failing on SSM', async () => {
    const r = await invoke('authorize', 'authorizer-request.json');
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toContain('the authorizer is not run by invoke local');
    expect(r.stdout + r.stderr).not.toContain('ENOTFOUND');
  }, 150_000);

  it('without a running stack it says so, in a sentence', async () => {
    const none = await new Promise<Invoked>((resolve) => {
      execFile(process.execPath, ['node_modules/serverless/bin/serverless.js', 'invoke', 'local', '-f', 'getPayment', '--path', 'events/get-payment.json'], { cwd: ROOT, env: { ...env, PAYBRIDGE_LOCAL_FILE: join(tmp.dir, 'missing.json') }, timeout: 120_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
    expect(none.code).not.toBe(0);
    expect(none.stdout + none.stderr).toContain('serverless invoke local runs the function against the local stack, and none is running');
  }, 150_000);
});
