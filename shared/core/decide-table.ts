import { decide, decideContext, type PaymentEvent } from './decide.js';
import { payloadHash } from './canonical.js';
import { DEFAULT_SETTINGS } from './lifecycle.js';
import type { PaymentRecord, Status } from './types.js';

/**
 * The state × event table of docs/architecture.md, computed from the transition function itself
 * (test/unit/core/decide-table.test.ts fails when the page and the code disagree). A cell is the status
 * the record moves to, or what happens instead: `refused`, `defer` (woken early: sleeps again),
 * `attempt` (woken when due), `=` (nothing changes, with the caller's answer), `–` (no driver raises
 * that event in that state: only the holder of a queued or in-process attempt reports an outcome).
 */

const NOW = Date.parse('2026-01-01T12:00:00Z');
const REQUEST = { amount: 100 };

interface Column {
  title: string;
  status: Status;
  unconfirmed?: boolean;
}

const COLUMNS: Column[] = [
  { title: 'retrying', status: 'retrying' },
  { title: 'reconciling', status: 'reconciling', unconfirmed: true },
  { title: 'posted', status: 'posted' },
  { title: 'failed', status: 'failed' },
  { title: 'held', status: 'held' },
  { title: 'held, may hold', status: 'held', unconfirmed: true },
  { title: 'unknown', status: 'unknown', unconfirmed: true },
];

/** Where each attempt event can arise: a send's outcome only for a payment being sent, a read's only for one being reconciled. */
const ARISES: Partial<Record<PaymentEvent['type'], readonly Status[]>> = {
  sent: ['retrying'],
  reconciled: ['reconciling'],
  'not-sent': ['retrying', 'reconciling'],
  stranded: ['retrying', 'reconciling'],
  woken: ['retrying', 'reconciling'],
};

const ROWS: [string, PaymentEvent][] = [
  ['sent: 2xx', { type: 'sent', outcome: { type: 'posted', httpStatus: 201, body: {} } }],
  ['sent: 429', { type: 'sent', outcome: { type: 'rate_limited', message: '429' } }],
  ['sent: 503, refused connection', { type: 'sent', outcome: { type: 'retryable', message: '503' } }],
  ['sent: ambiguous (500, timeout, reset)', { type: 'sent', outcome: { type: 'ambiguous', message: '500' } }],
  ['sent: rejected (4xx, error code)', { type: 'sent', outcome: { type: 'rejected', message: '422' } }],
  ['sent: 401/403 after a token refresh', { type: 'sent', outcome: { type: 'auth', message: '401' } }],
  ['not sent: credentials refused, config error', { type: 'not-sent', outcome: { type: 'auth', config: true, message: 'X_MAX_RPS' } }],
  ['not sent: token endpoint limiting', { type: 'not-sent', outcome: { type: 'rate_limited', message: '429' } }],
  ['reconciled: found', { type: 'reconciled', result: { type: 'found', body: {} } }],
  ['reconciled: absent', { type: 'reconciled', result: { type: 'absent' } }],
  ['reconciled: inconclusive', { type: 'reconciled', result: { type: 'inconclusive', message: 'read failed' } }],
  ['reconciled: unknowable', { type: 'reconciled', result: { type: 'unknowable', message: 'no key to look up' } }],
  ['stranded (lease or fence deadline passed)', { type: 'stranded', why: 'worker died' }],
  ['woken when due', { type: 'woken' }],
  ['woken early (outage over, probe)', { type: 'woken', now: true }],
  ['late success of this revision', { type: 'late-posted', revision: 2, attempts: 1 }],
  ['late success of an earlier revision', { type: 'late-posted', revision: 1, attempts: 1 }],
  ['operator: redrive', { type: 'redrive', by: 'ops' }],
  ['operator: repost', { type: 'repost', by: 'ops', evidence: 'checked' }],
  ['operator: resolve --posted', { type: 'resolve', as: 'posted', by: 'ops', evidence: 'found it' }],
  ['operator: resolve --not-posted', { type: 'resolve', as: 'not-posted', by: 'ops', evidence: 'not there' }],
  ['caller: the same body', { type: 'delivered', request: REQUEST, hash: payloadHash(REQUEST, 'table'), caller: 'alice' }],
  ['caller: an earlier revision\'s body', { type: 'delivered', request: { amount: 50 }, hash: payloadHash({ amount: 50 }, 'table'), caller: 'alice' }],
  ['caller: a corrected body', { type: 'delivered', request: { amount: 200 }, hash: payloadHash({ amount: 200 }, 'table'), caller: 'alice' }],
  ['caller: another caller, any body', { type: 'delivered', request: REQUEST, hash: payloadHash(REQUEST, 'table'), caller: 'bob' }],
];

function recordFor(column: Column): PaymentRecord {
  const stamp = new Date(NOW - 60_000).toISOString();
  const active = column.status === 'retrying' || column.status === 'reconciling';
  return {
    pk: 'nif-membership#1#1:k',
    system: 'nif-membership',
    tenant: '1',
    key: '1:k',
    status: column.status,
    version: 4,
    revision: 2,
    payloadHash: payloadHash(REQUEST, 'table'),
    request: REQUEST,
    caller: 'alice',
    attempts: 1,
    failures: 0,
    budgetFrom: NOW - 60_000,
    ...(active ? { fence: { id: 'f', n: 1 }, nextAttemptAt: NOW - 1_000 } : { nextAttemptAt: NOW - 60_000 }),
    ...(column.unconfirmed ? { unconfirmed: { since: NOW - 60_000, at: NOW - 60_000, revision: 2 } } : {}),
    checkpoints: {},
    revisions: [{ revision: 1, status: 'failed', payloadHash: payloadHash({ amount: 50 }, 'table'), attempts: 1, endedAt: stamp, reason: 'corrected' }],
    history: [],
    correlationId: 'c',
    createdAt: stamp,
    updatedAt: stamp,
    ttl: 1,
  };
}

function cell(column: Column, event: PaymentEvent): string {
  const arises = ARISES[event.type];
  if (arises && !arises.includes(column.status)) return '–';
  let n = 0;
  const ctx = decideContext('nif-membership', { now: NOW, policy: 'reconcile', settings: DEFAULT_SETTINGS, random: () => 0.5, fence: () => ({ id: 'g', n: n++ }) });
  const d = decide(recordFor(column), event, ctx);
  switch (d.kind) {
    case 'write': {
      const rev = (d.record.revision ?? 1) !== 2 ? ` r${d.record.revision}` : '';
      return `${d.record.status}${rev}${d.record.unconfirmed ? '*' : ''}`;
    }
    case 'none':
      return `= (${d.answer ?? 'no change'})`;
    case 'refuse':
      return d.answer ? `refused (${d.answer})` : 'refused';
    case 'defer':
      return 'defer';
    case 'attempt':
      return `attempt (${d.said})`;
  }
}

/** The table as Markdown: events down, the status (and what the downstream may hold) across. */
export function transitionTable(): string {
  const head = `| event | ${COLUMNS.map((c) => c.title).join(' | ')} |`;
  const rule = `|---|${COLUMNS.map(() => '---').join('|')}|`;
  const rows = ROWS.map(([name, event]) => `| ${name} | ${COLUMNS.map((c) => cell(c, event)).join(' | ')} |`);
  return [head, rule, ...rows].join('\n');
}
