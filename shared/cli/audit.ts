import type { Run } from './args.js';
import { scrubbedEntry } from './personal.js';
import { iso, shorten, table } from './format.js';
import { UsageError } from './io.js';
import { parseLimit } from './list.js';

/** `paybridge audit`: the audit log of operator actions, newest first, a page at a time. */
export async function auditCommand(run: Run): Promise<number> {
  const { values, io } = run;
  if (run.args.length > 0) throw new UsageError(`audit takes no arguments (got "${run.args.join(' ')}")`);
  const limit = parseLimit(values.limit);
  const c = await run.ctx();
  if (!c.audit) {
    io.err(`no audit log on ${c.where}`);
    return 1;
  }
  let page;
  try {
    page = await c.audit.list({ limit, ...(values.cursor ? { cursor: values.cursor } : {}) });
  } catch (err) {
    if (err instanceof RangeError) throw new UsageError('--cursor is not one this command printed');
    throw err;
  }
  page = { ...page, entries: page.entries.map(scrubbedEntry) };
  if (values.json) {
    io.out(JSON.stringify({ where: c.where, entries: page.entries, ...(page.cursor ? { cursor: page.cursor } : {}) }, null, 2));
    return 0;
  }
  if (page.entries.length === 0) {
    io.out(`no operator actions on ${c.where}`);
    return 0;
  }
  const rows = page.entries.map((e) => [iso(e.at), `${e.who} (${e.role})`, e.action, `${e.system} ${e.key}`, shorten(e.reason, 40), shorten(`${e.ok ? 'done' : 'refused'}: ${e.result}`, 50)]);
  for (const line of table([['WHEN', 'WHO', 'ACTION', 'PAYMENT', 'WHY', 'RESULT'], ...rows])) io.out(line);
  if (page.cursor) io.out(`more: --cursor ${page.cursor}`);
  return 0;
}

