import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DynamoExchange } from '../../shared/local/dynamo-tap.js';
import type { Stack } from '../../shared/local/stack.js';
import { call, testStack, waitForStatus } from '../helpers/stack.js';

/**
 * The burst start (issue 23 item 2). Thirty payments arrive at once where the limit lets a few be sent
 * now: the rest are queued (202), and each queued one is claimed with a write of its own. Written all at
 * once, those claims filled dynalite's queue and the event loop just when the claims ahead of the first
 * sends, and the workers' fence consumes, had to be on time: the first second of a backlog held 3 to 6
 * of its 10 sends (`npm run bench:limit -- --scenarios known --verbose`). They now take turns, two at a time.
 */
describe('claims of payments queued in a burst (issue 23, the burst start)', () => {
  let stack: Stack;
  const claims: DynamoExchange[] = [];
  beforeAll(async () => {
    stack = await testStack({
      env: { CAMBIO_MAX_RPS: '5' },
      cambio: { ratePerSecond: 5, limiter: 'rolling' },
      onDynamoRequest: (e) => {
        // A claim: the conditional PutItem of a new record. A queued one carries the fence its worker will consume.
        const item = e.request.Item as Record<string, unknown> | undefined;
        if (e.operation === 'PutItem' && e.request.ConditionExpression === 'attribute_not_exists(pk)' && item?.system && (item.fence as { M?: unknown } | undefined)?.M) claims.push(e);
      },
    });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('are written at most two at a time, and every payment is still claimed and posted', async () => {
    const ids = Array.from({ length: 30 }, (_, i) => `turns-${i}`);
    const replies = await Promise.all(ids.map((id) => call(stack, 'POST', '/v1/cambio/payment-notices', { status: 'PAID', contactId: id, paymentType: 'CARD' })));
    for (const r of replies) expect([201, 202], JSON.stringify(r.body)).toContain(r.status);
    const queued = replies.filter((r) => r.status === 202).length;
    expect(queued).toBeGreaterThanOrEqual(15);
    // (A payment claimed on a permit that it then missed is queued too, 202, but its claim was not a queued one.)
    expect(claims.length).toBeGreaterThanOrEqual(15);
    // The most claims dynalite had in hand at once (each from its arrival to its answer).
    const edges = claims.flatMap((c) => [
      { at: c.startedAt, d: 1 },
      { at: c.endedAt, d: -1 },
    ]);
    edges.sort((a, b) => a.at - b.at || a.d - b.d);
    let open = 0;
    let most = 0;
    for (const e of edges) most = Math.max(most, (open += e.d));
    expect(most).toBeLessThanOrEqual(2);
    // Waiting a turn loses nothing: at 5/s the thirty are posted within about six seconds.
    for (const id of ids) await waitForStatus(stack, 'cambio', id, ['posted'], 30_000);
  }, 60_000);
});
