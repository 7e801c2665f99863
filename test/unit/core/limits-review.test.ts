import type { APIGatewayProxyEvent } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import type { CliContext } from '../../../shared/cli/context.js';
import { runCli, type Io } from '../../../shared/cli/main.js';
import { makeConsoleHandler, type ConsoleDeps } from '../../../shared/console/handler.js';
import { issueSession, sessionSecret, SESSION_COOKIE } from '../../../shared/console/session.js';
import { Pacer } from '../../../shared/core/pacer.js';
import { EMPTY_LIMITER, learn, limitStatus, MAX_PAUSE_MS, type LimiterState } from '../../../shared/core/pacing.js';
import { statedWaitMs } from '../../../shared/core/retry-policy.js';
import type { AppDeps } from '../../../shared/deps.js';
import { parseOperatorKeys } from '../../../shared/http/operators.js';
import { createLogger } from '../../../shared/log.js';
import type { LimiterStore } from '../../../shared/store/port.js';

/**
 * Review of 9fe5f1c (issue 23 item 1: `paybridge limits`, GET /console/api/limits, limitStatus). Each case
 * here fails on that commit and names the defect it shows.
 */

const T = 1_800_000_000_000;
const VIEWER_KEY = 'vic-viewer-key-0123456789abc';
const log = createLogger({}, 'silent');

/** Limiter items per system, DynamoLimiterStore's optimistic concurrency; a read may be held (`hold`) or fail (`failing`). */
class Items implements LimiterStore {
  readonly items = new Map<string, LimiterState>();
  failing = new Set<string>();
  hold: Promise<void> | undefined;
  async read(system: string): Promise<LimiterState> {
    if (this.failing.has(system)) throw new Error(`ProvisionedThroughputExceededException reading limiter#${system}`);
    const snapshot = structuredClone(this.items.get(system) ?? { ...EMPTY_LIMITER, lanes: {} });
    const held = this.hold;
    this.hold = undefined;
    if (held) await held;
    return snapshot;
  }
  async write(system: string, state: LimiterState, expectedVer: number): Promise<boolean> {
    if ((this.items.get(system)?.ver ?? 0) !== Math.max(expectedVer, 0)) return false;
    this.items.set(system, { ...structuredClone(state), ver: Math.max(expectedVer, 0) + 1 });
    return true;
  }
}

function consoleOf(pacer: Pacer, rates: Record<string, number>, limiter: LimiterStore) {
  const operators = parseOperatorKeys(`vic:viewer=${VIEWER_KEY}`);
  const secret = sessionSecret('limits-review-log-hash-key-0123');
  const modules = new Map(Object.entries(rates).map(([name, r]) => [name, { name, maxPerSecond: () => r }]));
  const deps: ConsoleDeps = {
    app: { clock: () => T, log, modules, pacer } as unknown as AppDeps,
    operators,
    secret,
    secure: false,
    audit: {} as ConsoleDeps['audit'],
    browse: async () => ({ records: [], requests: { query: 0, batchGet: 0 } }),
    fence: () => ({ id: 'test', n: 0 }),
    limiter,
  };
  const { cookieValue } = issueSession(secret, operators.get(VIEWER_KEY)!, VIEWER_KEY, T);
  const handler = makeConsoleHandler(async () => deps);
  const get = () =>
    handler({
      path: '/console/api/limits',
      httpMethod: 'GET',
      headers: { host: 'localhost', cookie: `${SESSION_COOKIE}=${cookieValue}` },
      queryStringParameters: null,
      body: null,
      requestContext: { path: '/console/api/limits' },
    } as unknown as APIGatewayProxyEvent);
  return { get };
}

/** An item holding a pause no Date can hold: what the pacer wrote for `Retry-After: 100000000000000` before MAX_PAUSE_MS. */
function hugePause(store: Items, system: string): void {
  store.items.set(system, { ...EMPTY_LIMITER, lanes: {}, ver: 3, ceiling: 10, pausedUntil: T + 1e17, next: T + 1e17, lastLimitedAt: T - 5 });
}

/** Cambio paced at 10/s, and BRP's item holding a pause no Date can hold. */
async function cambioPacedBrpPausedBeyondDates(): Promise<{ store: Items; pacer: Pacer }> {
  const store = new Items();
  const pacer = new Pacer(store, () => T, log, undefined, 'w');
  await pacer.reserve('cambio', 10, 1, T + 5_000);
  hugePause(store, 'brp');
  return { store, pacer };
}

function cli(read: (system: string) => Promise<LimiterState>) {
  const out: string[] = [];
  const io: Io = { out: (l) => out.push(l), err: (l) => out.push(`ERR ${l}`), progress() {}, progressEnd() {}, interactive: false, confirm: async () => false, clock: () => T };
  const ctx = { where: 'test stage', limiter: { read } } as unknown as CliContext;
  return { out, run: (argv: string[]) => runCli(argv, async () => ctx, io) };
}

describe('GET /console/api/limits (review of 9fe5f1c)', () => {
  it('one system\'s item with a pause too far out for a Date does not take every system\'s row down as "400 Bad cursor"', async () => {
    const { store, pacer } = await cambioPacedBrpPausedBeyondDates();

    const res = await consoleOf(pacer, { cambio: 10, brp: 10 }, store).get();
    // On 9fe5f1c: new Date(pausedUntil).toISOString() throws a RangeError, which makeConsoleHandler answers
    // as 400 bad-cursor; the overview then shows "could not be read" on every card.
    expect(res.statusCode).toBe(200);
    expect(JSON.parse(res.body).limits.cambio).toMatchObject({ configured: 10, pacedNow: 10 });
  });

  it('one system\'s limiter read failing (a throttled GetItem) does not lose every other system\'s row', async () => {
    const store = new Items();
    const pacer = new Pacer(store, () => T, log, undefined, 'w');
    await pacer.reserve('cambio', 10, 1, T + 5_000);
    store.failing.add('brp');
    // On 9fe5f1c: Promise.all rejects, the handler rethrows (a 502 in API Gateway) and no system is shown.
    const res = await consoleOf(pacer, { cambio: 10, brp: 10 }, store)
      .get()
      .catch((err: Error) => ({ statusCode: -1, body: JSON.stringify({ thrown: err.message }) }));
    expect(res.statusCode).toBe(200);
    expect(JSON.parse(res.body).limits.cambio).toMatchObject({ configured: 10 });
  });

  it('a viewer\'s GET does not roll back the live pacer\'s view of the item (npm start: the console shares the intake\'s Pacer)', async () => {
    const store = new Items();
    const pacer = new Pacer(store, () => T, log, undefined, 'intake');
    const slots = await pacer.reserve('brp', 10, 1, T + 5_000);
    // The viewer's read of version 1 is in flight (held here) ...
    let release!: () => void;
    store.hold = new Promise<void>((r) => (release = r));
    const page = consoleOf(pacer, { brp: 10 }, store).get();
    // ... while this container writes a 429's pause (version 2) ...
    await pacer.feedback('brp', 10, { type: 'rate_limited', httpStatus: 429, waitMs: 3_000, message: 'Rate limit is exceeded' }, slots[0]);
    expect(store.items.get('brp')!.ver).toBe(2);
    expect(pacer.seen('brp').ver).toBe(2);
    release();
    expect((await page).statusCode).toBe(200);
    // ... and then lands: on 9fe5f1c the console's pacer.refresh replaced the cache with version 1. The pacer now
    // plans from a view without the pause (nextFree before it) and its next write is conditional on a stale version.
    expect(pacer.seen('brp').ver).toBe(2);
    expect(pacer.nextFree('brp')).toBeGreaterThanOrEqual(T + 3_000);
  });
});

describe('paybridge limits (review of 9fe5f1c)', () => {
  it('prints the other systems when one item holds a pause too far out for a Date', async () => {
    const { store } = await cambioPacedBrpPausedBeyondDates();
    const { out, run } = cli((s) => store.read(s));
    // On 9fe5f1c: iso() throws "RangeError: Invalid time value" and nothing is printed.
    const code = await run(['limits']).catch((err: Error) => `threw ${err.name}: ${err.message}`);
    expect(code).toBe(0);
    expect(out.join('\n')).toMatch(/^cambio\s+10\/s\s+10\/s/m);
  });

  it('--system takes a list as the other commands do (listOption): duplicates once, an empty value means every system', async () => {
    const item: LimiterState = { ...EMPTY_LIMITER, lanes: {}, ver: 2, ceiling: 10 };
    const dup = cli(async () => item);
    expect(await dup.run(['limits', '--system', 'brp,brp', '--system', 'brp'])).toBe(0);
    // On 9fe5f1c: three brp rows.
    expect(dup.out.filter((l) => l.startsWith('brp '))).toHaveLength(1);

    const empty = cli(async () => item);
    expect(await empty.run(['limits', '--system', ','])).toBe(0);
    // On 9fe5f1c: a table of headers only, exit 0 (redrive and payments list treat it as every system).
    expect(empty.out.filter((l) => /^\S+\s+10\/s/.test(l)).length).toBeGreaterThan(0);
  });
});

describe('a stated wait pauses a system for MAX_PAUSE_MS at most (found by the review of 9fe5f1c)', () => {
  it('Retry-After: 100000000000000 pauses the system 15 minutes, not three million years', async () => {
    const store = new Items();
    const pacer = new Pacer(store, () => T, log, undefined, 'w');
    const slots = await pacer.reserve('brp', 10, 1, T + 5_000);
    const waitMs = statedWaitMs({ 'retry-after': '100000000000000' }, '', T);
    expect(waitMs).toBe(1e17);
    await pacer.feedback('brp', 10, { type: 'rate_limited', httpStatus: 429, waitMs, message: 'Too many requests' }, slots[0]);
    expect(store.items.get('brp')!.pausedUntil).toBe(T + MAX_PAUSE_MS);
    expect(pacer.nextFree('brp')).toBeLessThanOrEqual(T + MAX_PAUSE_MS + 1_100);
    // A rate-limit reset stated in the headers is held to the same bound.
    expect(learn({ ...EMPTY_LIMITER, lanes: {} }, 10, { remaining: 0, resetMs: 1e15 }, T).pausedUntil).toBe(T + MAX_PAUSE_MS);
  });
});

describe('limitStatus (review of 9fe5f1c)', () => {
  it('promises no "next probe" when a stated limit at or below the learnt rate paces (a probe cannot raise the pace)', () => {
    // Learnt 8/s from 429s, the downstream's headers state 5/s: 5/s paces now and after any probe of the learnt rate.
    const state: LimiterState = { ...EMPTY_LIMITER, lanes: {}, ver: 4, ceiling: 10, rate: 8, learnedRate: 5, lastDecreaseAt: T - 1_000, probeEveryMs: 20_000 };
    const shown = limitStatus(state, undefined, T);
    expect(shown.pacedNow).toBe(5);
    // After the "probe" the rate paced is still 5: the CLI's "8/s, next probe in 19 s" says a raise is coming that never paces anything.
    expect(limitStatus(state, undefined, T + 60_000).pacedNow).toBe(5);
    expect(shown.nextProbeAt).toBeUndefined();
  });
});
