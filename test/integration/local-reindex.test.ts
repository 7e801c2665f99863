import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { afterAll, describe, expect, it } from 'vitest';
import { recordPk, type PaymentRecord } from '../../shared/core/types.js';
import type { Stack } from '../../shared/local/stack.js';
import { eventually, testStack } from '../helpers/stack.js';

/**
 * Seen in kill-and-restart runs of `npm start` (issue 10): dynalite writes an item's index entries and the
 * item as separate steps, so a process killed between them leaves an unfinished payment its due index
 * does not show, and the sweep never finds it again: it stayed `retrying` for good. The local stack now
 * writes every unfinished record again at boot on a kept data directory. Here the lost index entry is
 * made by hand: the record is written, the stack closed, its due-index entry deleted from the LevelDB
 * files, and the stack started again.
 */

const dataDir = mkdtempSync(join(tmpdir(), 'paybridge-reindex-'));
let stack: Stack | undefined;

afterAll(async () => {
  await stack?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('local boot on a kept data directory', () => {
  it('an unfinished payment whose due-index entry was lost (a kill inside a dynalite write) is found and posted', async () => {
    const first = await testStack({ dataDir, bootSweep: false });
    const pk = recordPk('cambio', 'default', 'lost-index-1');
    const now = Date.now();
    const record: PaymentRecord = {
      pk,
      system: 'cambio',
      tenant: 'default',
      key: 'lost-index-1',
      status: 'retrying',
      version: 1,
      revision: 1,
      payloadHash: 'h',
      request: { status: 'PAID', contactId: 'lost-index-1', paymentType: 'CARD' },
      attempts: 0,
      failures: 0,
      budgetFrom: now,
      checkpoints: {},
      history: [{ at: new Date(now).toISOString(), event: 'received' }],
      correlationId: 'lost-index-1',
      createdAt: new Date(now).toISOString(),
      createdMs: now,
      updatedAt: new Date(now).toISOString(),
      ttl: Math.floor(now / 1000) + 86_400,
      fence: { id: 'lost-index-fence', n: 0 },
      nextAttemptAt: now,
    };
    expect((await first.deps.store.claim(record)).claimed).toBe(true);
    expect((await first.deps.store.due('cambio', Number.MAX_SAFE_INTEGER, 100)).map((d) => d.pk)).toContain(pk);
    await first.close();

    // The due-index entry goes, as a kill between dynalite's index and item writes leaves it.
    const db = new ClassicLevel<string, { pk?: { S?: string } }>(join(dataDir), { valueEncoding: 'json' });
    let removed = 0;
    for await (const [key, value] of db.iterator()) {
      if (key.includes('~due-index~') && value?.pk?.S === pk) {
        await db.del(key);
        removed++;
      }
    }
    await db.close();
    expect(removed).toBe(1);

    stack = await testStack({ dataDir });
    const posted = await eventually(async () => {
      const r = await stack!.deps.store.get(pk);
      return r?.status === 'posted' ? r : undefined;
    }, 15_000);
    expect(posted.status).toBe('posted');
    expect(stack.cambio!.stats.applied['lost-index-1']).toBe(1);
  }, 30_000);
});
