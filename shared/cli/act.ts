import { previewOperatorAction } from '../core/decide.js';
import { operatorContext, redrive, repost, resolveNotPosted, resolvePosted, type OperatorDeps, type OperatorResult } from '../core/operator.js';
import type { PaymentRecord, Status } from '../core/types.js';
import type { CliContext } from './context.js';
import { bar, duration, plural } from './format.js';
import { confirmed, UsageError } from './io.js';
import { listPage } from './listing.js';
import type { Run } from './args.js';
import { assertSystem, CLI_SYSTEMS, findRecord } from './systems.js';
import { listOption } from './list.js';

const REPOSTABLE: Status[] = ['failed', 'held', 'unknown'];

function requireEvidence(evidence: string | undefined): string {
  if (!evidence?.trim()) throw new UsageError('--evidence is required: what you checked, so the next person knows why');
  return evidence.trim();
}

/**
 * The payment, if it exists and an operator may act on it now: looked up before anything is asked,
 * so nobody confirms an action that cannot happen (issue 15). The action checks again when it writes.
 */
async function actionable(run: Run, c: CliContext, system: string, key: string, pk: string, allowed: Status[], action: string): Promise<PaymentRecord | undefined> {
  const record = await c.store.get(pk);
  if (!record) {
    run.io.err(`no ${system} payment with key "${key}" on ${c.where}`);
    return undefined;
  }
  if (!allowed.includes(record.status)) {
    run.io.err(`${system} ${key} is ${record.status}: ${action} is only for ${allowed.join(', ')} payments`);
    return undefined;
  }
  if (record.leaseUntil !== undefined && record.leaseUntil > run.now) {
    run.io.err(`${system} ${key}: an attempt is in flight right now; look again in ${duration(record.leaseUntil - run.now)}`);
    return undefined;
  }
  return record;
}

/**
 * Keeps the action in the audit log (the console's too: who, when, what, why, the result), when the
 * context has one. A failure to write it is said, not hidden: the action itself is done.
 */
async function audited(run: Run, c: CliContext, what: { action: string; system: string; key: string; reason: string; evidence?: string }, done: OperatorResult): Promise<void> {
  if (!c.audit) return;
  try {
    await c.audit.append({
      who: run.by,
      role: 'cli',
      ...what,
      ok: done.ok,
      result: done.ok ? `now ${done.record.status}${what.action === 'repost' ? ` (revision ${done.record.revision})` : ''}` : `refused: ${done.reason}`,
      ...(done.ok ? { status: done.record.status } : {}),
    });
  } catch (err) {
    run.io.err(`the action is done, but its audit entry could not be written: ${(err as Error).message}`);
  }
}

function report(run: Run, done: OperatorResult, action: string, system: string, key: string, said: (r: PaymentRecord) => string): number {
  if (!done.ok) {
    run.io.err(`cannot ${action} ${system} ${key}: ${done.reason}`);
    return 1;
  }
  const r = done.record;
  if (run.values.json) run.io.out(JSON.stringify({ ok: true, action, system, key, status: r.status, revision: r.revision ?? 1, by: run.by }, null, 2));
  else run.io.out(said(r));
  return 0;
}

/**
 * What the action would do, said before it is taken (issue 19): what the downstream may already hold,
 * and what the transition function will do about it (reconcile first, resume, send, or refuse).
 */
function preview(run: Run, deps: OperatorDeps, record: PaymentRecord, action: Parameters<typeof previewOperatorAction>[1]): ReturnType<typeof previewOperatorAction> {
  const p = previewOperatorAction(record, action, operatorContext(deps, record, run.io.clock()));
  if (!run.values.json) run.io.out(`${record.system} ${record.key} is ${record.status}; ${record.system} holds ${p.mayHold}; ${action} will ${p.allowed ? p.will : `not happen: ${p.reason}`}`);
  return p;
}

async function sendAgain(run: Run, system: string, key: string, evidence: string, asked: string): Promise<number> {
  const c = await run.ctx();
  // The key as typed, or decoded from the percent-encoded form a status URL shows.
  const { pk } = await findRecord(c.store, system, key);
  const record = await actionable(run, c, system, key, pk, REPOSTABLE, asked);
  if (!record) return 1;
  const deps = { ...c, clock: run.io.clock };
  // `resolve --repost` is the operator's word that an unknown payment did not arrive: recorded as such
  // (with the evidence) first, so the repost sends it rather than reconciling it again.
  const asserted = asked === 'resolve --repost' && record.status !== 'failed';
  const p = preview(run, deps, record, asserted ? 'resolve-not-posted' : 'repost');
  if (!p.allowed) {
    run.io.err(`cannot ${asked} ${system} ${key}: ${p.reason}`);
    return 1;
  }
  const question = p.will.startsWith('reconcile first')
    ? `Reconcile ${system} ${key} (${record.status}) first, and send it only if ${system} does not hold it?`
    : `Send ${system} ${key} (${record.status}) again as revision ${(record.revision ?? 1) + 1}? Only if you are sure it did not arrive.`;
  if (!(await confirmed(run.io, run.values.yes, question, 'not re-posted'))) return 1;
  if (asserted) {
    const resolved = await resolveNotPosted(deps, pk, run.by, evidence);
    await audited(run, c, { action: 'resolve-not-posted', system, key, reason: run.values.reason ?? evidence, evidence }, resolved);
    if (!resolved.ok) return report(run, resolved, asked, system, key, () => '');
  }
  const done = await repost(deps, pk, run.by, evidence);
  await audited(run, c, { action: 'repost', system, key, reason: run.values.reason ?? evidence, evidence }, done);
  return report(run, done, 'repost', system, key, (r) =>
    r.status === 'reconciling' ? `${system} ${key} queued to be reconciled first (by ${run.by})` : `${system} ${key} queued to be sent again as revision ${r.revision ?? 1} (by ${run.by})`,
  );
}

/** `paybridge payments resolve SYSTEM KEY --posted | --not-posted | --repost --evidence "..."` */
export async function resolve(run: Run): Promise<number> {
  const [system, key, ...extra] = run.args;
  if (!system || !key || extra.length > 0) throw new UsageError('usage: paybridge payments resolve SYSTEM KEY (--posted | --not-posted | --repost) --evidence "..."');
  const modes = [run.values.posted && 'posted', run.values['not-posted'] && 'not-posted', run.values.repost && 'repost'].filter((m): m is string => Boolean(m));
  if (modes.length !== 1) throw new UsageError('say either --posted (it arrived), --not-posted (it did not) or --repost (send it again)');
  const evidence = requireEvidence(run.values.evidence);
  assertSystem(system);
  if (modes[0] === 'repost') return sendAgain(run, system, key, evidence, 'resolve --repost');

  const c = await run.ctx();
  // The key as typed, or decoded from the percent-encoded form a status URL shows.
  const { pk } = await findRecord(c.store, system, key);
  const record = await actionable(run, c, system, key, pk, ['unknown', 'held'], 'resolve');
  if (!record) return 1;
  const deps = { ...c, clock: run.io.clock };
  if (!preview(run, deps, record, modes[0] === 'posted' ? 'resolve-posted' : 'resolve-not-posted').allowed) return 1;
  if (modes[0] === 'posted') {
    const done = await resolvePosted(deps, pk, run.by, evidence);
    await audited(run, c, { action: 'resolve-posted', system, key, reason: run.values.reason ?? evidence, evidence }, done);
    return report(run, done, 'resolve-posted', system, key, () => `${system} ${key} recorded as posted by ${run.by}`);
  }
  const done = await resolveNotPosted(deps, pk, run.by, evidence);
  await audited(run, c, { action: 'resolve-not-posted', system, key, reason: run.values.reason ?? evidence, evidence }, done);
  return report(run, done, 'resolve-not-posted', system, key, () => `${system} ${key} recorded as not posted (now failed) by ${run.by}; to send it: paybridge repost ${system} ${key} --evidence "..."`);
}

/** `paybridge repost SYSTEM KEY --evidence "..."`: the way back for a failed, held or unknown payment. */
export async function repostCommand(run: Run): Promise<number> {
  const [system, key, ...extra] = run.args;
  if (!system || !key || extra.length > 0) throw new UsageError('usage: paybridge repost SYSTEM KEY --evidence "..." [--yes]');
  const evidence = requireEvidence(run.values.evidence);
  assertSystem(system);
  return sendAgain(run, system, key, evidence, 'repost');
}

/** Every held payment of the systems asked for, page by page through the status index (never a Scan). */
async function heldPayments(c: CliContext, systems: readonly string[]): Promise<PaymentRecord[]> {
  const out: PaymentRecord[] = [];
  let cursor: string | undefined;
  // Bounded: 100 pages of 1,000; a larger backlog is redriven by running the command again.
  for (let page = 0; page < 100; page++) {
    const got = await listPage(c.store, { systems, statuses: ['held'] }, 1_000, cursor);
    out.push(...got.records);
    cursor = got.cursor;
    if (!cursor) break;
  }
  return out;
}

/** `paybridge redrive`: held payments, then dead-lettered messages, with progress and a summary. */
export async function redriveCommand(run: Run): Promise<number> {
  const { values, io } = run;
  if (run.args.length > 0) throw new UsageError(`redrive takes no SYSTEM or KEY (got "${run.args.join(' ')}"): use --system`);
  const statuses = listOption(values.status);
  if (statuses.some((s) => s !== 'held')) throw new UsageError('only held payments are redriven; unknown ones are resolved one by one (payments resolve), failed ones reposted (repost)');
  const systems = listOption(values.system);
  for (const s of systems) assertSystem(s);
  const c = await run.ctx();
  const held = await heldPayments(c, systems.length > 0 ? systems : CLI_SYSTEMS);
  const dlq = await c.deadLetters.count();
  if (!values.json) io.out(`${plural(held.length, 'held payment')} and ${plural(dlq, 'dead-lettered message')} on ${c.where}`);
  if (held.length + dlq === 0) {
    if (values.json) io.out(JSON.stringify({ held: 0, deadLetters: 0, redriven: 0, moved: 0, refused: [] }, null, 2));
    return 0;
  }
  if (held.length > 0) {
    // What each would do, told before anything is asked: sent, resumed, reconciled first, or refused.
    const deps = { ...c, clock: io.clock };
    const plans = new Map<string, number>();
    for (const r of held) {
      const p = previewOperatorAction(r, 'redrive', operatorContext(deps, r, io.clock()));
      const what = p.allowed ? (p.will.startsWith('reconcile first') ? 'reconciled first (the downstream may hold them)' : p.will.startsWith('resume') ? 'resumed from what the downstream holds' : 'sent again') : 'refused (the downstream may hold them and cannot be asked: resolve them)';
      plans.set(what, (plans.get(what) ?? 0) + 1);
    }
    if (!values.json) for (const [what, n] of plans) io.out(`  ${plural(n, 'payment')} will be ${what}`);
  }
  if (!(await confirmed(io, values.yes, 'Redrive them now? Fix the credentials first.', 'nothing redriven'))) return 1;
  let sent = 0;
  const refused: { system: string; key: string; reason: string }[] = [];
  for (const r of held) {
    const done = await redrive({ ...c, clock: io.clock }, r.pk, run.by);
    await audited(run, c, { action: 'redrive', system: r.system, key: r.key, reason: values.reason ?? '(none given: paybridge redrive --reason)' }, done);
    if (done.ok) sent++;
    else refused.push({ system: r.system, key: r.key, reason: done.reason });
    io.progress(`held  ${bar(sent + refused.length, held.length)}`);
  }
  if (held.length > 0) io.progressEnd();
  const moved = dlq > 0 ? await c.deadLetters.redrive((m) => io.progress(`dlq   ${bar(m, dlq)}`)) : 0;
  if (dlq > 0) io.progressEnd();
  if (values.json) {
    io.out(JSON.stringify({ held: held.length, deadLetters: dlq, redriven: sent, moved, refused }, null, 2));
  } else {
    io.out(`redriven: ${plural(sent, 'held payment')}, ${plural(moved, 'dead letter')}; refused: ${refused.length}`);
    for (const r of refused) io.out(`  ${r.system} ${r.key}: ${r.reason}`);
  }
  return refused.length > 0 ? 1 : 0;
}
