import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { transitionTable } from '../../../shared/core/decide-table.js';

describe('docs/architecture.md: the state × event table', () => {
  it('is the table the transition function computes (regenerate it from shared/core/decide-table.ts when a rule changes)', () => {
    const doc = readFileSync(new URL('../../../docs/architecture.md', import.meta.url), 'utf8');
    const start = doc.indexOf('<!-- decide-table:start -->');
    const end = doc.indexOf('<!-- decide-table:end -->');
    expect(start).toBeGreaterThan(0);
    expect(doc.slice(start + '<!-- decide-table:start -->'.length, end).trim()).toBe(transitionTable());
  });
});
