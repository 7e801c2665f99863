import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { redrive, repost, resolvePosted } from '../core/operator.js';
import { recordPk, STATUSES, type PaymentRecord, type Status } from '../core/types.js';
import { parseConfig } from '../config.js';
import { buildSystems, SYSTEM_NAMES } from '../systems/registry.js';
import { makeDispatcher } from '../systems/http.js';
import { publicView } from '../http/payments.js';
import type { CliContext } from './context.js';

export const USAGE = `paybridge: operate payments on the local stack (npm start) or, with --stage, a deployed stage

  paybridge payments list --status retrying|reconciling|held|unknown|failed|posted [--system S] [--since 2h|2026-11-22T10:00Z] [--limit N]
  paybridge payments show SYSTEM KEY
  paybridge payments resolve SYSTEM KEY (--posted | --repost) --evidence "..." [--yes] [--by NAME]
  paybridge redrive [--system S] [--status held] [--yes]       held payments, then dead-lettered messages
  paybridge simulate [--n 40] [--dup 0.25] [--storm 15]        a demo burst against the local sandbox

  Options: --stage STAGE --region eu-north-1 (AWS, default credential chain); systems: cambio, nif-membership, nif-corporate, nif, brp, kontantanalys`;

export interface Io {
  out(line: string): void;
  err(line: string): void;
  /** Asks a yes/no question; resolves false without a terminal. */
  confirm(question: string): Promise<boolean>;
  clock(): number;
}

export class UsageError extends Error {}

const SYSTEMS: readonly string[] = SYSTEM_NAMES;

function since(text: string | undefined, now: number): number | undefined {
  if (!text) return undefined;
  const m = /^(\d+)\s*(m|h|d)$/.exec(text);
  if (m) return now - Number(m[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'm' | 'h' | 'd'];
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new UsageError(`--since must be like 2h, 30m, 1d or a date, not "${text}"`);
  return t;
}

/** The record behind a status-route key, as the route itself finds it (the modules' own routeKey). */
function pkOf(system: string, key: string): string {
  if (!SYSTEMS.includes(system)) throw new UsageError(`unknown system "${system}"; known: ${SYSTEMS.join(', ')}`);
  const modules = buildSystems(parseConfig({}), makeDispatcher(), Date.now);
  const ids = modules.get(system)?.routeKey(key);
  if (!ids) throw new UsageError(`"${key}" is not a ${system} key`);
  return recordPk(system, ids.tenant, ids.key);
}

function table(rows: string[][]): string[] {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd());
}

async function listRecords(ctx: CliContext, status: Status, system: string | undefined, limit = 10_000): Promise<PaymentRecord[]> {
  const out: PaymentRecord[] = [];
  for (const name of system ? [system] : SYSTEMS) {
    let cursor: string | undefined;
    // Through the status index, page by page (never a Scan); bounded by `limit`.
    for (let page = 0; page < 1_000 && out.length < limit; page++) {
      const got = await ctx.store.list(name, status, { limit: Math.min(200, limit - out.length), ...(cursor ? { cursor } : {}) });
      out.push(...got.records.filter((r) => !r.key.startsWith('run:')));
      cursor = got.cursor;
      if (!cursor) break;
    }
  }
  return out;
}

function bar(done: number, total: number): string {
  const width = 30;
  const filled = total === 0 ? width : Math.round((done / total) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}`;
}

export async function runCli(argv: string[], ctx: () => Promise<CliContext>, io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      status: { type: 'string' },
      system: { type: 'string' },
      since: { type: 'string' },
      limit: { type: 'string' },
      posted: { type: 'boolean' },
      repost: { type: 'boolean' },
      evidence: { type: 'string' },
      yes: { type: 'boolean' },
      by: { type: 'string' },
      n: { type: 'string' },
      dup: { type: 'string' },
      storm: { type: 'string' },
      stage: { type: 'string' },
      region: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  const [command, sub, ...rest] = positionals;
  if (values.help || !command) {
    io.out(USAGE);
    return values.help ? 0 : 2;
  }
  const by = values.by ?? userInfo().username;
  const now = io.clock();

  if (command === 'payments' && sub === 'list') {
    const status = values.status as Status;
    if (!STATUSES.includes(status)) throw new UsageError(`--status must be one of ${STATUSES.join(', ')}`);
    if (values.system && !SYSTEMS.includes(values.system)) throw new UsageError(`unknown system "${values.system}"`);
    const c = await ctx();
    const from = since(values.since, now);
    const limit = Number(values.limit ?? 200);
    const records = (await listRecords(c, status, values.system))
      .filter((r) => from === undefined || Date.parse(r.updatedAt) >= from)
      .sort((a, b) => a.updatedAt.localeCompare(b.updatedAt))
      .slice(0, limit);
    io.out(`${records.length} ${status} payment${records.length === 1 ? '' : 's'} on ${c.where}`);
    if (records.length > 0) {
      for (const line of table([
        ['SYSTEM', 'KEY', 'STATUS', 'ATTEMPTS', 'UPDATED', 'LAST ERROR'],
        ...records.map((r) => [r.system, r.key, r.status, String(r.attempts), r.updatedAt, (r.error?.code ? `${r.error.code}: ` : '') + (r.error?.message ?? '').slice(0, 70)]),
      ]))
        io.out(line);
    }
    return 0;
  }

  if (command === 'payments' && sub === 'show') {
    const [system, key] = rest;
    if (!system || !key) throw new UsageError('usage: paybridge payments show SYSTEM KEY');
    const c = await ctx();
    const record = await c.store.get(pkOf(system, key));
    if (!record) {
      io.err(`no ${system} payment with key "${key}" on ${c.where}`);
      return 1;
    }
    // Nothing of the request, the downstream's answer or the history beyond what the status route shows
    // (its publicView replaces personal values: NIF's personId and comment); the operator's own fields beside it.
    const { request: _r, pk: _pk, payloadHash: _h, leaseOwner: _o, dueShard: _d, statusShard: _s, fence: _f, ...shown } = record;
    io.out(JSON.stringify({ ...shown, ...publicView(record, buildSystems(parseConfig({}), makeDispatcher(), Date.now).get(system)) }, null, 2));
    return 0;
  }

  if (command === 'payments' && sub === 'resolve') {
    const [system, key] = rest;
    if (!system || !key) throw new UsageError('usage: paybridge payments resolve SYSTEM KEY (--posted | --repost) --evidence "..."');
    if (Boolean(values.posted) === Boolean(values.repost)) throw new UsageError('say either --posted (it arrived) or --repost (send it again)');
    if (!values.evidence?.trim()) throw new UsageError('--evidence is required: what you checked, so the next person knows why');
    const c = await ctx();
    const pk = pkOf(system, key);
    if (values.repost && !values.yes && !(await io.confirm(`Send ${system} ${key} again? Only if you are sure it did not arrive. [y/N] `))) {
      io.err('not re-posted');
      return 1;
    }
    const done = values.posted ? await resolvePosted({ ...c, clock: io.clock }, pk, by, values.evidence) : await repost({ ...c, clock: io.clock }, pk, by, values.evidence);
    if (!done.ok) {
      io.err(`cannot resolve ${system} ${key}: ${done.reason}`);
      return 1;
    }
    io.out(values.posted ? `${system} ${key} recorded as posted by ${by}` : `${system} ${key} queued to be sent again (by ${by})`);
    return 0;
  }

  if (command === 'redrive') {
    if ((values.status ?? 'held') !== 'held') throw new UsageError('only held payments are redriven; unknown ones are resolved one by one (payments resolve)');
    const c = await ctx();
    const held = await listRecords(c, 'held', values.system);
    const dlq = await c.deadLetters.count();
    io.out(`${held.length} held payment${held.length === 1 ? '' : 's'} and ${dlq} dead-lettered message${dlq === 1 ? '' : 's'} on ${c.where}`);
    if (held.length + dlq === 0) return 0;
    if (!values.yes && !(await io.confirm('Send them again now? Fix the credentials first. [y/N] '))) {
      io.err('nothing redriven');
      return 1;
    }
    let sent = 0;
    const refused: string[] = [];
    for (const r of held) {
      const done = await redrive({ ...c, clock: io.clock }, r.pk, by);
      if (done.ok) sent++;
      else refused.push(`${r.system} ${r.key}: ${done.reason}`);
      io.err(`\rheld  ${bar(sent + refused.length, held.length)}`);
    }
    if (held.length > 0) io.err('');
    const moved = dlq > 0 ? await c.deadLetters.redrive((m) => io.err(`\rdlq   ${bar(m, dlq)}`)) : 0;
    if (dlq > 0) io.err('');
    io.out(`redriven: ${sent} held payment${sent === 1 ? '' : 's'}, ${moved} dead letter${moved === 1 ? '' : 's'}; refused: ${refused.length}`);
    for (const line of refused) io.out(`  ${line}`);
    return refused.length > 0 ? 1 : 0;
  }

  if (command === 'simulate') {
    const c = await ctx();
    if (!c.local?.sandboxes.cambio) throw new UsageError('simulate runs against the local stack with its Cambio sandbox (npm start without CAMBIO_BASE_URL)');
    const { simulate } = await import('./simulate.js');
    return simulate(c.local as Required<CliContext>['local'], { n: Number(values.n ?? 40), dup: Number(values.dup ?? 0.25), storm: Number(values.storm ?? 15) }, io);
  }

  throw new UsageError(`unknown command "${[command, sub].filter(Boolean).join(' ')}"`);
}
