import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DEFAULT_SETTINGS } from '../../shared/core/lifecycle.js';
import { DEFAULT_PACING } from '../../shared/core/pacing.js';

const doc = readFileSync(new URL('../../docs/architecture.md', import.meta.url), 'utf8');
// serverless.yml's ${...} variables are left as text and its CloudFormation tags unresolved (quietly):
// only the literal numbers under custom and provider are compared.
const sls = parse(readFileSync(new URL('../../serverless.yml', import.meta.url), 'utf8'), { logLevel: 'error' }) as { custom: Record<string, unknown>; provider: Record<string, unknown> };

/** "90 s", "15 min", "30 ms", "72 h", "400 d", "0.2 /s", "8" → the code's unit (ms for times). */
function value(text: string, symbol: string): number {
  const m = /^([\d.]+)\s*(ms|s|min|h|d|\/s)?$/.exec(text.trim());
  if (!m) throw new Error(`cannot read "${text}"`);
  const n = Number(m[1]);
  // Days and the per-second rate are the code's own units; serverless.yml counts seconds.
  if (m[2] === 'd' || m[2] === '/s' || !m[2]) return n;
  const ms = n * { ms: 1, s: 1_000, min: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'min' | 'h'];
  return symbol.startsWith('custom.') || symbol.startsWith('provider.') ? ms / 1000 : ms;
}

function codeValue(symbol: string): unknown {
  const [root, ...path] = symbol.split('.');
  const source: unknown = { DEFAULT_SETTINGS, DEFAULT_PACING, custom: sls.custom, provider: sls.provider }[root as string];
  return path.reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], source);
}

describe('docs/architecture.md', () => {
  // The table of "The numbers": `symbol` | value | meaning.
  const numbers = doc.slice(doc.indexOf('## The numbers'), doc.indexOf('\n## ', doc.indexOf('## The numbers') + 1));
  const rows = [...numbers.matchAll(/^\| `([\w.]+)` \| ([^|]+) \|/gm)].map((m) => ({ symbol: m[1] as string, text: m[2] as string }));

  it('states the engine\'s, the limiter\'s and the deployment\'s numbers as the code has them', () => {
    expect(rows.length).toBeGreaterThanOrEqual(18);
    for (const { symbol, text } of rows) expect(value(text, symbol), `${symbol} = ${text}`).toBe(codeValue(symbol));
  });

  it('covers every setting of DEFAULT_SETTINGS and DEFAULT_PACING (a new one must be documented)', () => {
    const documented = new Set(rows.map((r) => r.symbol));
    const leaves = (prefix: string, o: Record<string, unknown>): string[] =>
      Object.entries(o).flatMap(([k, v]) => (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length > 0 ? leaves(`${prefix}.${k}`, v as Record<string, unknown>) : [`${prefix}.${k}`]));
    // budgetBySystem is empty by default: per-system budgets come from the environment.
    const expected = [...leaves('DEFAULT_SETTINGS', { ...DEFAULT_SETTINGS, budgetBySystem: undefined }), ...leaves('DEFAULT_PACING', { ...DEFAULT_PACING })].filter((s) => !s.endsWith('budgetBySystem'));
    for (const s of expected) expect(documented.has(s), s).toBe(true);
  });

  it('cites each downstream API by its public page and points nowhere outside the repository', () => {
    for (const page of [
      'https://developer.openservices.cambio.se/docs/services/betalningsstatus/operations/register-payment',
      'https://idrettsforbundet.atlassian.net/wiki/',
      'https://brpsystems.atlassian.net/wiki/spaces/API/',
      'https://confluence.tillvaxtverket.se/display/PIP/PiPoS+Kontantanalys+API+v1.0',
    ]) {
      expect(doc).toContain(page);
    }
    expect(doc).not.toMatch(/\]\(\.\.\/\.\.\/|shared\/DESIGN|\bseeds?\b \d/i);
  });
});
