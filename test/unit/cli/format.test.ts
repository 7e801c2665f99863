import { describe, expect, it } from 'vitest';
import { age, bar, duration, iso, shorten, table, when } from '../../../shared/cli/format.js';

describe('what the paybridge command prints', () => {
  const now = Date.parse('2026-11-22T10:00:00.000Z');

  it('writes instants as ISO to the second, with their age', () => {
    expect(iso(now + 123)).toBe('2026-11-22T10:00:00Z');
    expect(iso('2026-11-22T09:57:00.456Z')).toBe('2026-11-22T09:57:00Z');
    expect(age(now - 3 * 60_000, now)).toBe('3 min ago');
    expect(age(now - 45_000, now)).toBe('45 s ago');
    expect(age(now - (2 * 60 + 5) * 60_000, now)).toBe('2 h 5 min ago');
    expect(age(now - 3 * 86_400_000 - 4 * 3_600_000, now)).toBe('3 d 4 h ago');
    expect(age(now + 40_000, now)).toBe('in 40 s');
    expect(age(now - 500, now)).toBe('just now');
    expect(when('2026-11-22T09:57:00Z', now)).toBe('2026-11-22T09:57:00Z (3 min ago)');
    expect(duration(72 * 3_600_000)).toBe('3 d');
    expect(duration(71 * 3_600_000 + 58 * 60_000)).toBe('2 d 23 h');
    expect(duration(47 * 3_600_000 + 58 * 60_000)).toBe('47 h 58 min');
  });

  it('cuts a long text at a word boundary with an ellipsis, never mid-word', () => {
    const text = 'no membership found for the person in the period that was asked for';
    const cut = shorten(text, 30);
    expect(cut).toBe('no membership found for the…');
    expect(cut.length).toBeLessThanOrEqual(30);
    expect(text.startsWith(cut.slice(0, -1))).toBe(true);
    expect(shorten('short', 30)).toBe('short');
    expect(shorten('line one\n   line two', 30)).toBe('line one line two');
    expect(shorten('x'.repeat(50), 10)).toBe(`${'x'.repeat(9)}…`);
    // Trailing punctuation before the cut is dropped, so the ellipsis does not follow a comma.
    expect(shorten('alpha, beta gamma delta', 13)).toBe('alpha, beta…');
    expect(shorten('alpha beta, gamma delta', 14)).toBe('alpha beta…');
  });

  it('aligns table columns and does not pad the last one', () => {
    expect(table([['A', 'BB', 'C'], ['aaa', 'b', 'c c']])).toEqual(['A    BB  C', 'aaa  b   c c']);
    expect(bar(1, 4, 8)).toBe('[##......] 1/4');
    expect(bar(0, 0, 4)).toBe('[####] 0/0');
  });
});
