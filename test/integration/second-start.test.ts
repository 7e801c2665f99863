import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startLocal, tempDir, type Started } from '../helpers/start.js';

/** Issue 15: a second `npm start` in the same folder crashed with dynalite's "Database is closed". */
describe('a second npm start beside a running one', () => {
  const tmp = tempDir();
  let first: Started;
  let port: number;
  const env = (over: Record<string, string> = {}) => ({
    PORT: String(port),
    PAYBRIDGE_DATA_DIR: join(tmp.dir, 'dynalite'),
    PAYBRIDGE_LOCAL_FILE: join(tmp.dir, 'local.json'),
    ...over,
  });

  beforeAll(async () => {
    port = await freePort();
    first = startLocal(env());
    await first.waitFor(/paybridge is running on/);
  }, 60_000);
  afterAll(async () => {
    try {
      await first?.stop();
    } finally {
      tmp.remove();
    }
  });

  /** Runs a second stack that must refuse to start; returns what it said. */
  async function refused(over: Record<string, string>): Promise<string> {
    const second = startLocal(env(over));
    const code = await second.exited(30_000);
    expect(code, second.stdout()).toBe(1);
    expect(second.stdout()).not.toContain('paybridge is running on');
    const said = second.stderr();
    // Words, not a stack trace.
    expect(said).not.toMatch(/^\s+at /m);
    expect(said).not.toContain('Database is closed');
    return said;
  }

  it('the same port and data folder: says both, names the running stack, and what to run instead', async () => {
    const said = await refused({});
    expect(said).toContain(`port ${port} on 127.0.0.1 is in use`);
    expect(said).toContain(`the data folder ${join(tmp.dir, 'dynalite')} is held by another process`);
    expect(said).toMatch(new RegExp(`another paybridge: http://127\\.0\\.0\\.1:${port}, process ${first.proc.pid}`));
    expect(said).toMatch(/Stop it \(Ctrl-C in its terminal, or kill \d+\), or run this one beside it:/);
    expect(said).toMatch(/ {2}PORT=\d+ PAYBRIDGE_DATA_DIR=\S+ npm start/);
  }, 40_000);

  it('only the data folder taken (another port)', async () => {
    const said = await refused({ PORT: String(await freePort()) });
    expect(said).not.toContain('is in use');
    expect(said).toContain('is held by another process');
    expect(said).toMatch(/ {2}PAYBRIDGE_DATA_DIR=\S+ npm start/);
  }, 40_000);

  it('only the port taken (another data folder)', async () => {
    const said = await refused({ PAYBRIDGE_DATA_DIR: join(tmp.dir, 'other') });
    expect(said).toContain(`port ${port} on 127.0.0.1 is in use`);
    expect(said).not.toContain('held by another process');
    expect(said).toMatch(/ {2}PORT=\d+ npm start/);
  }, 40_000);

  it('the first stack is unharmed and still answers; into a pipe it writes the JSON lines Lambda writes', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/v1/openapi.json`, { headers: { 'x-api-key': 'pb_dev_local_key' }, signal: AbortSignal.timeout(10_000) });
    expect(res.status).toBe(200);
    // Not a terminal and no LOG_FORMAT: JSON, as before issue 15's human output.
    const line = (await first.waitFor(/^\{.*"message":"request".*$/m, 10_000))[0];
    expect(JSON.parse(line)).toMatchObject({ level: 'INFO', message: 'request', route: 'GET /v1/openapi.json', status: 200 });
  });
});
