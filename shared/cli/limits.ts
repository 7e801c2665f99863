import { limitStatus, limitStatusJson, type LimitStatus } from '../core/pacing.js';
import type { Run } from './args.js';
import { age, iso, table, when } from './format.js';
import { UsageError } from './io.js';
import { listOption } from './list.js';
import { assertSystem, CLI_SYSTEMS } from './systems.js';

/** A rate as sends per second, to two decimals at most ("10/s", "2.5/s"). */
const perSecond = (r: number | undefined) => (r === undefined ? '-' : `${Number.isInteger(r) ? r : Number(r.toFixed(2))}/s`);
const at = (t: number | undefined, now: number) => (t === undefined ? '-' : when(t, now));

/**
 * `paybridge limits [--system S]`: each system's shared rate limiter as it stands: the configured ceiling
 * (as the item's last writer had it), the rate sends are paced to now, what was learnt from 429s and when
 * the next probe may raise it, a limit the downstream stated, a pause, the last 429 and an outage. Read only.
 */
export async function limitsCommand(run: Run): Promise<number> {
  const { values, io, now } = run;
  if (run.args.length > 0) throw new UsageError(`limits takes no arguments (got "${run.args.join(' ')}")`);
  const named = listOption(values.system);
  const systems = named.length > 0 ? named : [...CLI_SYSTEMS];
  for (const s of systems) assertSystem(s);
  const c = await run.ctx();
  if (!c.limiter) {
    io.err(`no rate limiter to read on ${c.where}`);
    return 1;
  }
  const read = c.limiter;
  const found: [string, LimitStatus | undefined][] = await Promise.all(
    systems.map(async (s) => {
      const state = await read.read(s);
      // ver 0: no item yet (nothing was paced for this system); below 0: one an earlier version wrote.
      return [s, state.ver > 0 ? limitStatus(state, undefined, now) : undefined] as [string, LimitStatus | undefined];
    }),
  );
  if (values.json) {
    io.out(JSON.stringify({ where: c.where, at: new Date(now).toISOString(), limits: Object.fromEntries(found.map(([s, l]) => [s, l ? limitStatusJson(l) : null])) }, null, 2));
    return 0;
  }
  io.out(`rate limits on ${c.where}`);
  const rows = found.map(([s, l]) =>
    l === undefined
      ? [s, '-', '-', 'nothing paced yet', '-', '-', '-']
      : [
          s,
          perSecond(l.configured),
          perSecond(l.pacedNow),
          l.learnt === undefined ? '-' : `${perSecond(l.learnt)}, next probe ${l.nextProbeAt !== undefined && l.nextProbeAt > now ? age(l.nextProbeAt, now) : 'due'}`,
          perSecond(l.stated),
          at(l.pausedUntil, now),
          `${at(l.lastLimitedAt, now)}${l.failingSince !== undefined ? `; failing since ${iso(l.failingSince)}` : ''}`,
        ],
  );
  for (const line of table([['SYSTEM', 'CEILING', 'PACED NOW', 'LEARNT FROM 429s', 'STATED', 'PAUSED UNTIL', 'LAST 429'], ...rows])) io.out(line);
  return 0;
}
