import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startLocal, tempDir, type Started } from '../helpers/start.js';

/** The permission bits a file or folder gives anyone but its owner. */
const othersBits = (path: string) => statSync(path).mode & 0o077;

/**
 * Issue 20 item 10: what npm start keeps on disk is its owner's alone. local.json names an API key (and
 * the operator key's file), dynalite's files hold the records' raw personIds; log-hash-key was already 0600.
 */
describe('npm start keeps its files owner-only', () => {
  const tmp = tempDir();
  const dataDir = join(tmp.dir, 'dynalite');
  let stack: Started;
  beforeAll(async () => {
    // A data folder left by an earlier version, readable by everyone.
    mkdirSync(dataDir, { recursive: true, mode: 0o755 });
    writeFileSync(join(dataDir, 'LOG.old'), 'left by an earlier run\n', { mode: 0o644 });
    stack = startLocal({ PORT: String(await freePort()), PAYBRIDGE_DATA_DIR: dataDir, PAYBRIDGE_LOCAL_FILE: join(tmp.dir, 'local.json'), LOG_FORMAT: 'json' });
    await stack.waitFor(/paybridge is running on/, 60_000);
  }, 90_000);
  afterAll(async () => {
    try {
      await stack?.stop();
    } finally {
      tmp.remove();
    }
  });

  it('local.json, the operator key, the log-hash key, and the data folder with every file in it', () => {
    const local = JSON.parse(readFileSync(join(tmp.dir, 'local.json'), 'utf8')) as { operatorKeyFile?: string; logHashKeyFile?: string };
    expect(local.operatorKeyFile).toBe(join(tmp.dir, 'operator-key'));
    const files = [join(tmp.dir, 'local.json'), join(tmp.dir, 'operator-key'), join(tmp.dir, 'log-hash-key'), dataDir, ...readdirSync(dataDir).map((f) => join(dataDir, f))];
    expect(files.length).toBeGreaterThan(5);
    for (const file of files) expect(othersBits(file).toString(8), file).toBe('0');
  });
});
