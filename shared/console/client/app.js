// The paybridge operator console: plain JavaScript, served by paybridge itself (no CDN, no build step),
// under a Content Security Policy that admits no inline script or style. Every text from the server is
// put in the page as text (textContent), never as markup.
'use strict';

const state = { session: null, systems: [] };
// Where the console's API is, from where this script was loaded: /console/api/ under npm start, and
// /<stage>/console/api/ on an API Gateway stage URL, which the server cannot see in its own paths.
const API_BASE = new URL('../api/', document.currentScript.src).pathname;
const main = document.getElementById('main');

/** An element with attributes and children (strings become text nodes). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== undefined && c !== null && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

let ids = 0;
/** A labelled control: every input has a label a screen reader and the browser test can find. */
function field(label, control) {
  const id = control.id || `f${++ids}`;
  control.id = id;
  return h('label', { for: id }, label, control);
}

async function api(path, opts = {}) {
  const headers = { accept: 'application/json' };
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  if (opts.method && opts.method !== 'GET' && state.session) headers['x-csrf-token'] = state.session.csrf;
  const res = await fetch(`${API_BASE}${path}`, { method: opts.method || 'GET', headers, credentials: 'same-origin', body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    const err = new Error(body.detail || `HTTP ${res.status}`);
    err.status = res.status;
    err.problem = body;
    throw err;
  }
  return body;
}

function alertBox(err) {
  const fields = err.problem && Array.isArray(err.problem.errors) ? err.problem.errors.map((e) => h('li', {}, `${e.pointer}: ${e.detail}`)) : [];
  return h('div', { class: 'alert', role: 'alert' }, err.message, fields.length ? h('ul', {}, fields) : null);
}

function statusBadge(s) {
  return h('span', { class: `status ${s}` }, s);
}

function when(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

function paymentHref(system, key) {
  return `#/payment/${encodeURIComponent(system)}/${encodeURIComponent(key)}`;
}

function show(...nodes) {
  main.replaceChildren(...nodes);
  main.focus({ preventScroll: true });
}

// ---------- sign-in ----------

function signIn(message) {
  document.getElementById('nav').hidden = true;
  document.getElementById('who').hidden = true;
  const key = h('input', { type: 'password', name: 'key', autocomplete: 'current-password', required: true });
  const out = h('div', { 'aria-live': 'polite' }, message ? h('div', { class: 'alert', role: 'alert' }, message) : null);
  const form = h(
    'form',
    {
      onsubmit: async (e) => {
        e.preventDefault();
        try {
          state.session = await api('login', { method: 'POST', body: { key: key.value } });
          key.value = '';
          await start();
        } catch (err) {
          out.replaceChildren(alertBox(err));
        }
      },
    },
    field('Operator key', key),
    h('button', { type: 'submit' }, 'Sign in'),
  );
  show(h('section', { class: 'signin' }, h('h1', {}, 'Sign in'), h('p', { class: 'muted' }, 'With your operator key (OPERATOR_KEYS). Caller API keys cannot sign in.'), form, out));
}

async function signOut() {
  try {
    await api('logout', { method: 'POST', body: {} });
  } finally {
    state.session = null;
    signIn('Signed out.');
  }
}

// ---------- overview ----------

const CHARTS = [
  { title: 'Posted per minute', series: [['posted', 'posted/min']] },
  { title: '429s and ambiguous answers per minute', series: [['limited', '429s'], ['ambiguous', 'ambiguous']] },
  { title: 'Send latency (ms)', series: [['p50', 'p50'], ['p99', 'p99']] },
  { title: 'Queue depth', series: [['depth', 'messages']] },
  { title: 'Rate (sends/s): learnt against configured', series: [['learnt', 'learnt'], ['configured', 'configured']] },
];
const COLOURS = ['#1f4e79', '#c0392b', '#8a5a00'];

function chart(container, title, data, series) {
  const width = Math.max(240, container.clientWidth || 250);
  if (typeof window.uPlot !== 'function') {
    container.append(h('p', { class: 'muted' }, `${title}: chart library not loaded`));
    return;
  }
  const opts = {
    title,
    width,
    height: 150,
    series: [{}, ...series.map(([, label], i) => ({ label, stroke: COLOURS[i % COLOURS.length], width: 1.5 }))],
    axes: [{}, { size: 40 }],
    legend: { show: true },
  };
  new window.uPlot(opts, [data.t, ...series.map(([name]) => data[name])], container);
}

/** "in 20 s", "3 min ago": how far an ISO time is from now. */
function fromNow(iso) {
  const ms = new Date(iso).getTime() - Date.now();
  const s = Math.round(Math.abs(ms) / 1000);
  const text = s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${Math.round(s / 3600)} h`;
  return Math.abs(ms) < 2000 ? 'now' : ms > 0 ? `in ${text}` : `${text} ago`;
}

/** A rate as sends per second, to two decimals at most. */
function perSecond(r) {
  return `${Number.isInteger(r) ? r : Number(r.toFixed(2))}/s`;
}

/** One system's rate limit as it stands (GET /console/api/limits): paced, configured, learnt, stated, paused, last 429. */
function limitLine(l) {
  if (!l) return h('p', { class: 'limit muted' }, 'Rate: not known');
  const parts = [];
  if (l.pacedNow !== undefined) parts.push(`Rate: paced at ${perSecond(l.pacedNow)}`);
  if (l.configInvalid) parts.push(`configuration invalid${l.configured !== undefined ? ` (the last writer had ${perSecond(l.configured)})` : ''}`);
  else if (l.configured !== undefined) parts.push(`configured ${perSecond(l.configured)}`);
  if (l.learnt !== undefined) parts.push(`learnt from 429s ${perSecond(l.learnt)}${l.nextProbeAt ? `, next probe ${fromNow(l.nextProbeAt)}` : ''}`);
  if (l.stated !== undefined) parts.push(`stated by the downstream ${perSecond(l.stated)}`);
  if (l.pausedUntil) parts.push(`paused until ${when(l.pausedUntil)}`);
  if (l.lastLimitedAt) parts.push(`last 429 ${fromNow(l.lastLimitedAt)}`);
  if (l.error) parts.push(l.error);
  if (parts.length > 0 && !parts[0].startsWith('Rate:')) parts[0] = `Rate: ${parts[0]}`;
  return h('p', { class: `limit${l.error || l.configInvalid ? ' muted' : ''}` }, parts.join(' · ') || 'Rate: not known');
}

async function overview(params) {
  const span = params.get('span') === 'day' ? 'day' : 'hour';
  const [data, limits] = await Promise.all([api('overview'), api('limits').catch((err) => ({ error: err.message, limits: {} }))]);
  const systems = Object.keys(data.counts);
  const toggle = h('p', {}, 'Span: ', span === 'hour' ? h('strong', {}, 'last hour') : h('a', { href: '#/overview?span=hour' }, 'last hour'), ' · ', span === 'day' ? h('strong', {}, 'last day') : h('a', { href: '#/overview?span=day' }, 'last day'));
  const cards = h('div', { class: 'cards' });
  show(h('h1', {}, 'Overview'), toggle, cards);
  for (const s of systems) {
    const c = data.counts[s] || {};
    const link = (status) => h('a', { href: `#/payments?status=${status}&system=${encodeURIComponent(s)}` }, `${c[status] || 0} ${status}`);
    const charts = h('div', { class: 'charts' });
    cards.append(h('section', { class: 'card', 'aria-label': s }, h('h2', {}, s), h('div', { class: 'counts' }, link('held'), link('unknown'), link('failed'), link('retrying'), link('reconciling')), limits.error ? h('p', { class: 'limit muted' }, `Rate: could not be read (${limits.error})`) : limitLine(limits.limits[s]), charts));
    const series = data.charts && data.charts[s] && data.charts[s][span];
    if (!series) {
      charts.append(h('p', { class: 'muted' }, 'No charts here: in AWS these figures are CloudWatch metrics (namespace paybridge).'));
      continue;
    }
    for (const def of CHARTS) {
      const box = h('div', { class: 'chart', role: 'img', 'aria-label': `${s}: ${def.title}` });
      charts.append(box);
      chart(box, def.title, series, def.series);
    }
  }
}

// ---------- payments ----------

const STATUSES = ['posted', 'retrying', 'reconciling', 'unknown', 'held', 'failed'];

function select(name, options, value, any) {
  const el = h('select', { name }, h('option', { value: '' }, any), options.map((o) => h('option', { value: o, selected: o === value }, o)));
  return el;
}

async function payments(params) {
  const form = h('form', { class: 'filters', role: 'search' });
  const status = select('status', STATUSES, params.get('status') || '', 'any status');
  const system = select('system', state.systems, params.get('system') || '', 'any system');
  const caller = h('input', { name: 'caller', value: params.get('caller') || '', size: 12 });
  const prefix = h('input', { name: 'prefix', value: params.get('prefix') || '', size: 16 });
  const since = h('input', { name: 'since', value: params.get('since') || '', placeholder: '2h, 1d or ISO', size: 12 });
  const until = h('input', { name: 'until', value: params.get('until') || '', placeholder: 'ISO time', size: 12 });
  form.append(field('Status', status), field('System', system), field('Caller', caller), field('Key prefix', prefix), field('Created since', since), field('Created until', until), h('button', { type: 'submit' }, 'Filter'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const el of [status, system, caller, prefix, since, until]) if (el.value.trim()) q.set(el.name, el.value.trim());
    location.hash = `#/payments?${q}`;
  });
  const body = h('tbody');
  const table = h('table', {}, h('caption', { class: 'muted' }, 'Newest first'), h('thead', {}, h('tr', {}, ['System', 'Key', 'Status', 'Rev', 'Attempts', 'Caller', 'Created', 'Last error'].map((t) => h('th', { scope: 'col' }, t)))), body);
  const more = h('div');
  const out = h('div', { 'aria-live': 'polite' });
  const bulk = h('div');
  show(h('h1', {}, 'Payments'), form, out, table, more, bulk);
  const filter = {};
  for (const k of ['status', 'system', 'caller', 'prefix', 'since', 'until']) if (params.get(k)) filter[k] = params.get(k);

  const load = async (cursor) => {
    const q = new URLSearchParams(cursor ? { cursor } : filter);
    try {
      const page = await api(`payments?${q}`);
      for (const p of page.payments) {
        body.append(
          h(
            'tr',
            {},
            h('td', {}, p.system),
            h('td', { class: 'key' }, h('a', { href: paymentHref(p.system, p.key) }, p.key)),
            h('td', {}, statusBadge(p.status)),
            h('td', {}, String(p.revision)),
            h('td', {}, String(p.attempts)),
            h('td', {}, p.caller || ''),
            h('td', {}, when(p.createdAt)),
            h('td', {}, p.error ? `${p.error.kind}${p.error.code ? ` ${p.error.code}` : ''}: ${p.error.message}` : ''),
          ),
        );
      }
      if (body.children.length === 0 && !page.cursor) out.replaceChildren(h('p', { class: 'muted' }, 'No payments match.'));
      else out.replaceChildren();
      more.replaceChildren(page.cursor ? h('button', { type: 'button', class: 'secondary', onclick: () => load(page.cursor) }, 'Next page') : h('p', { class: 'muted' }, 'End of the list.'));
    } catch (err) {
      out.replaceChildren(alertBox(err));
    }
  };
  await load();
  if (state.session.role === 'operator') bulk.append(bulkPanel(filter));
}

/** Bulk redrive or repost by the current filter: a preview with the count, then a paced, cancellable run. */

/** A settlement event on the timeline: its type, sequence and id, and a row per delivery (endpoint id, status, tries, last answer). */
function settlementItem(t) {
  const e = t.settlement;
  const rows = e.deliveries.map((dl) =>
    h(
      'tr',
      {},
      h('td', { class: 'key' }, dl.endpointId),
      h('td', {}, dl.status),
      h('td', {}, String(dl.tries)),
      h('td', {}, dl.lastAttempt ? (dl.lastAttempt.httpStatus ? `HTTP ${dl.lastAttempt.httpStatus}` : 'no answer') : '—'),
      h('td', {}, dl.lastAttempt ? `${dl.lastAttempt.ms} ms` : '—'),
    ),
  );
  return h(
    'li',
    { class: 'settlement', 'data-event-id': e.id },
    h('time', { datetime: t.at }, when(t.at)),
    h('span', { class: 'kind' }, 'event'),
    h('strong', {}, `${e.type} #${e.sequence}`),
    ' ',
    h('code', {}, e.id),
    rows.length
      ? h('table', { class: 'deliveries' }, h('thead', {}, h('tr', {}, h('th', {}, 'Endpoint'), h('th', {}, 'Status'), h('th', {}, 'Tries'), h('th', {}, 'Last answer'), h('th', {}, 'Time'))), h('tbody', {}, rows))
      : h('span', { class: 'muted' }, ' — no deliveries yet'),
  );
}

function bulkPanel(filter) {
  const reason = h('textarea', { name: 'bulk-reason', rows: 2 });
  const out = h('div', { 'aria-live': 'polite' });
  const preview = async (action) => {
    out.replaceChildren(h('p', { class: 'muted' }, 'Counting…'));
    try {
      const p = await api('bulk/preview', { method: 'POST', body: { action, filter } });
      if (p.count === 0) return out.replaceChildren(h('p', {}, `No payment matching this filter can be ${action === 'redrive' ? 'redriven' : 'reposted'}.`));
      const run = h('button', { type: 'button' }, `Run: ${action} ${p.count}`);
      run.addEventListener('click', () => bulkRun(action, p, reason.value, out));
      out.replaceChildren(h('div', { class: 'preview' }, h('p', {}, `${p.count} payment(s) would be ${action === 'redrive' ? 'redriven' : 'reposted'}${p.complete ? '' : ' (the first 1,000; narrow the filter for the rest)'}, paced at each system's rate: ${Object.entries(p.ratePerSecond).map(([s, r]) => `${s} ${r}/s`).join(', ')}.`), run));
    } catch (err) {
      out.replaceChildren(alertBox(err));
    }
  };
  return h(
    'section',
    { class: 'card', 'aria-label': 'Bulk actions' },
    h('h2', {}, 'Bulk actions on this filter'),
    field('Reason (for the audit log)', reason),
    h('p', {}, h('button', { type: 'button', class: 'secondary', onclick: () => preview('redrive') }, 'Preview bulk redrive'), ' ', h('button', { type: 'button', class: 'secondary', onclick: () => preview('repost') }, 'Preview bulk repost')),
    out,
  );
}

async function bulkRun(action, p, reason, out) {
  if (!reason.trim()) return out.replaceChildren(h('div', { class: 'alert', role: 'alert' }, 'A reason is required: it goes into the audit log with every action.'));
  let cancelled = false;
  const bar = h('progress', { max: p.count, value: 0, 'aria-label': 'Bulk progress' });
  const note = h('p', {}, `0 of ${p.count}`);
  const cancel = h('button', { type: 'button', class: 'secondary', onclick: () => (cancelled = true) }, 'Cancel');
  out.replaceChildren(h('div', { class: 'preview' }, bar, note, cancel));
  let done = 0;
  let refused = 0;
  for (const item of p.items) {
    if (cancelled) break;
    const started = Date.now();
    try {
      await api(`payments/${encodeURIComponent(item.system)}/${encodeURIComponent(item.key)}/actions/${action}`, { method: 'POST', body: { reason, bulk: p.bulk } });
    } catch {
      refused++;
    }
    done++;
    bar.value = done;
    note.textContent = `${done} of ${p.count}${refused ? ` (${refused} refused: see the audit log)` : ''}`;
    // Paced at the system's rate, so a bulk run never asks more of a downstream than its limit.
    const gap = 1000 / Math.max(0.1, p.ratePerSecond[item.system] || 1);
    const wait = gap - (Date.now() - started);
    if (wait > 0) await new Promise((r) => setTimeout(r, Math.min(wait, 10_000)));
  }
  cancel.disabled = true;
  note.textContent = `${cancelled ? 'Cancelled after' : 'Done:'} ${done} of ${p.count}${refused ? `, ${refused} refused (see the audit log)` : ''}.`;
}

// ---------- one payment ----------

const ACTION_LABELS = { redrive: 'Redrive', repost: 'Repost', 'resolve-posted': 'Resolve: posted', 'resolve-not-posted': 'Resolve: not posted' };

async function payment(system, key) {
  let d;
  try {
    d = await api(`payments/${encodeURIComponent(system)}/${encodeURIComponent(key)}`);
  } catch (err) {
    return show(h('h1', {}, `${system} ${key}`), alertBox(err));
  }
  const p = d.payment;
  const facts = h(
    'dl',
    { class: 'facts' },
    h('dt', {}, 'Status'), h('dd', {}, statusBadge(p.status)),
    h('dt', {}, 'Revision'), h('dd', {}, String(p.revision)),
    h('dt', {}, 'Attempts'), h('dd', {}, String(p.attempts)),
    h('dt', {}, 'Caller'), h('dd', {}, p.caller || '—'),
    h('dt', {}, 'Created'), h('dd', {}, when(p.createdAt)),
    h('dt', {}, 'Updated'), h('dd', {}, when(p.updatedAt)),
    p.nextAttemptAt ? [h('dt', {}, 'Next attempt'), h('dd', {}, when(p.nextAttemptAt))] : null,
    p.error ? [h('dt', {}, 'Last error'), h('dd', {}, `${p.error.kind}${p.error.httpStatus ? ` (HTTP ${p.error.httpStatus})` : ''}${p.error.code ? ` ${p.error.code}` : ''}: ${p.error.message}`)] : null,
    p.result ? [h('dt', {}, 'Result'), h('dd', {}, `HTTP ${p.result.httpStatus}${p.result.note ? `: ${p.result.note}` : ''}`)] : null,
    h('dt', {}, 'Checkpoints'), h('dd', {}, Object.keys(p.checkpoints || {}).length ? JSON.stringify(p.checkpoints) : 'none'),
  );
  const actions = h('div', { class: 'actions' });
  for (const [name, pv] of Object.entries(d.actions)) {
    if (!pv.allowed) continue;
    actions.append(actionForm(system, key, name, pv));
  }
  const timeline = h(
    'ol',
    { class: 'timeline' },
    d.timeline.map((t) =>
      t.settlement
        ? settlementItem(t)
        : h('li', {}, h('time', { datetime: t.at }, when(t.at)), h('span', { class: 'kind' }, t.kind), h('strong', {}, t.event), t.who ? ` by ${t.who}` : '', t.detail ? ` — ${t.detail}` : ''),
    ),
  );
  show(
    h('p', {}, h('a', { href: '#/payments' }, '← Payments')),
    h('h1', {}, `${system} ${key}`),
    facts,
    h('h2', {}, 'Actions'),
    actions.children.length
      ? state.session.role === 'operator'
        ? actions
        : h('p', { class: 'muted' }, `You are signed in as a viewer: only an operator can act. Open actions: ${Object.entries(d.actions).filter(([, v]) => v.allowed).map(([k]) => ACTION_LABELS[k]).join(', ')}.`)
      : h('p', { class: 'muted' }, `No action applies to a ${p.status} payment.`),
    h('h2', {}, 'Timeline'),
    timeline,
    h('h2', {}, 'Request (personal data masked)'),
    h('pre', {}, JSON.stringify(p.request, null, 2)),
  );
}

function actionForm(system, key, name, pv) {
  const resolving = name.startsWith('resolve');
  const reason = h('textarea', { name: 'reason', rows: 2, required: true });
  const evidence = resolving ? h('textarea', { name: 'evidence', rows: 2, required: true }) : null;
  const out = h('div', { 'aria-live': 'polite' });
  const form = h(
    'form',
    {
      'aria-label': ACTION_LABELS[name],
      onsubmit: async (e) => {
        e.preventDefault();
        try {
          const done = await api(`payments/${encodeURIComponent(system)}/${encodeURIComponent(key)}/actions/${name}`, { method: 'POST', body: { reason: reason.value, ...(evidence ? { evidence: evidence.value } : {}) } });
          out.replaceChildren(h('div', { class: 'notice', role: 'status' }, `${ACTION_LABELS[name]}: done, now ${done.status}. Recorded in the audit log.`));
          setTimeout(() => route(), 800);
        } catch (err) {
          out.replaceChildren(alertBox(err));
        }
      },
    },
    h('h3', {}, ACTION_LABELS[name]),
    h('div', { class: 'preview' }, h('p', {}, h('strong', {}, 'The downstream may already hold: '), pv.mayHold), h('p', {}, h('strong', {}, 'This will: '), pv.will)),
    field('Reason', reason),
    evidence ? field('Evidence (what you checked downstream)', evidence) : null,
    h('button', { type: 'submit' }, ACTION_LABELS[name]),
    out,
  );
  return h('div', { class: 'action' }, form);
}

// ---------- audit ----------

async function audit() {
  const body = h('tbody');
  const more = h('div');
  show(h('h1', {}, 'Audit log'), h('table', {}, h('caption', { class: 'muted' }, 'Every operator action, newest first'), h('thead', {}, h('tr', {}, ['When', 'Who', 'Action', 'Payment', 'Why', 'Result'].map((t) => h('th', { scope: 'col' }, t)))), body), more);
  const load = async (cursor) => {
    const page = await api(`audit${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ''}`);
    for (const a of page.entries) {
      body.append(
        h(
          'tr',
          {},
          h('td', {}, when(a.at)),
          h('td', {}, `${a.who} (${a.role})`),
          h('td', {}, a.action + (a.bulk ? ` [${a.bulk}]` : '')),
          h('td', { class: 'key' }, h('a', { href: paymentHref(a.system, a.key) }, `${a.system} ${a.key}`)),
          h('td', {}, a.reason + (a.evidence ? ` (evidence: ${a.evidence})` : '')),
          h('td', {}, `${a.ok ? 'done' : 'refused'}: ${a.result}`),
        ),
      );
    }
    if (body.children.length === 0) more.replaceChildren(h('p', { class: 'muted' }, 'No operator action yet.'));
    else more.replaceChildren(page.cursor ? h('button', { type: 'button', class: 'secondary', onclick: () => load(page.cursor) }, 'Older') : h('p', { class: 'muted' }, 'End of the log.'));
  };
  await load();
}

// ---------- routing ----------

async function route() {
  if (!state.session) return signIn();
  const hash = location.hash.replace(/^#\/?/, '') || 'overview';
  const [path, query] = hash.split('?');
  const params = new URLSearchParams(query || '');
  for (const a of document.querySelectorAll('#nav a')) a.toggleAttribute('aria-current', a.getAttribute('href') === `#/${path.split('/')[0]}`);
  for (const a of document.querySelectorAll('#nav a[aria-current]')) a.setAttribute('aria-current', 'page');
  try {
    const parts = path.split('/');
    if (parts[0] === 'payments') await payments(params);
    else if (parts[0] === 'payment' && parts.length >= 3) await payment(decodeURIComponent(parts[1]), decodeURIComponent(parts.slice(2).join('/')));
    else if (parts[0] === 'audit') await audit();
    else await overview(params);
  } catch (err) {
    if (err.status === 401) {
      state.session = null;
      return signIn('Your session ended: sign in again.');
    }
    show(alertBox(err));
  }
}

async function start() {
  try {
    state.session = await api('session');
  } catch (err) {
    state.session = null;
    return signIn();
  }
  state.systems = state.session.systems || [];
  document.getElementById('nav').hidden = false;
  const who = document.getElementById('who');
  who.hidden = false;
  who.replaceChildren(h('span', {}, `${state.session.name} (${state.session.role})`), h('button', { type: 'button', onclick: signOut }, 'Sign out'));
  await route();
}

window.addEventListener('hashchange', () => void route());
void start();
