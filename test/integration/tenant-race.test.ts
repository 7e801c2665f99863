import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upsert } from '../../shared/core/intake.js';
import { recordPk } from '../../shared/core/types.js';
import type { Stack } from '../../shared/local/stack.js';
import { call, testStack, eventually } from '../helpers/stack.js';

/**
 * Issue 20, item 1: a caller could overwrite another caller's Kontantanalys object. The route checked the
 * owner once; the upsert read the record again and never looked at the caller, so a PUT of bob's
 * externalId that passed the check while bob's first PUT waited for its send slot went to Kontantanalys as
 * an update of bob's object, and its caller got 200 with bob's record and remote id.
 */
const ALICE = { 'x-api-key': 'key-of-alice' };
const BOB = { 'x-api-key': 'key-of-bob' };
const service = (lst: boolean) => ({ providerId: 1, servicePrincipalId: 2, serviceTypeId: 1, forms: ['Uttagsautomat'], active: true, properties: { lst } });

describe("one caller cannot write another caller's record (issue 20, item 1)", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await testStack({
      env: { API_KEYS: 'alice=key-of-alice,bob=key-of-bob' },
      // One send a second: a PUT right after another waits about a second for its slot, the window of the attack.
      kontantanalys: { ratePerSecond: 1, seededProviders: 5 },
      kontantanalysSyncIntervalMs: false,
    });
  });
  afterAll(async () => {
    await stack?.close();
  });

  const record = (externalId: string) => stack.deps.store.get(recordPk('kontantanalys', 'default', `services:${externalId}`));

  it("alice's PUT of bob's externalId while bob's first PUT waits for its slot: refused, nothing of bob's told or sent", async () => {
    // Takes the current slot, so bob's PUT below waits for the next one.
    const warm = call(stack, 'PUT', '/v1/kontantanalys/services/race-warm', service(true), BOB);
    await new Promise((r) => setTimeout(r, 50));
    const bobs = call(stack, 'PUT', '/v1/kontantanalys/services/race-1', service(true), BOB);
    await new Promise((r) => setTimeout(r, 100));
    const alices = await call(stack, 'PUT', '/v1/kontantanalys/services/race-1', service(false), ALICE);
    const [bob] = await Promise.all([bobs, warm]);
    // Whichever claimed the key first owns it (a Kontantanalys PUT claims just before its send slot, so on a
    // busy machine alice's may come first); the other gets the refusal that tells nothing, and the object
    // holds the owner's body only: never one caller's body sent as an update of the other's object.
    const aliceWon = bob.status === 409;
    const [winner, loser] = aliceWon ? [alices, bob] : [bob, alices];
    expect([200, 201, 202]).toContain(winner.status);
    expect(loser.status).toBe(409);
    expect(loser.body.type).toMatch(/idempotency-key-taken$/);
    expect(JSON.stringify(loser.body)).not.toMatch(/remoteId|statusUrl|posted|retrying/);
    expect(loser.headers.get('location')).toBeNull();
    const stored = await eventually(async () => {
      const r = await record('race-1');
      return r?.status === 'posted' ? r : undefined;
    });
    expect(stored).toMatchObject({ caller: aliceWon ? 'alice' : 'bob', request: { attributes: { properties: { lst: !aliceWon } } } });
    expect(stored.history.map((h) => h.event)).not.toContain('changed');
  });

  it("the engine's upsert itself refuses another caller's record (the route's check is not the only one)", async () => {
    const created = await call(stack, 'PUT', '/v1/kontantanalys/services/race-2', service(true), BOB);
    expect([201, 202]).toContain(created.status);
    await eventually(async () => (await record('race-2'))?.status === 'posted');
    const module = stack.deps.systems('kontantanalys')!;
    const updates = stack.kontantanalys!.stats.updates;
    for (const body of [service(false), service(true)]) {
      const parsed = module.parse({ body, headers: {}, pathParameters: { resource: 'services', externalId: 'race-2' } });
      const result = await upsert(stack.deps, module, parsed, { owner: 'req-alice', correlationId: 'c-alice', deadline: Date.now() + 20_000, caller: 'alice' });
      expect(result.kind).toBe('foreign');
    }
    expect(stack.kontantanalys!.stats.updates).toBe(updates);
    expect(await record('race-2')).toMatchObject({ caller: 'bob', version: expect.any(Number), request: { attributes: { properties: { lst: true } } } });
  });
});
