/** How the command writes times, ages, tables and long texts for a person to read (pure). */

/** An instant as ISO 8601 in UTC to the second: milliseconds only add noise on a terminal. */
export function iso(at: number | string): string {
  const ms = typeof at === 'number' ? at : Date.parse(at);
  // NaN, or beyond what a Date holds (±8.64e15 ms): as given, where toISOString would throw.
  if (!(Math.abs(ms) <= 8.64e15)) return String(at);
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** A length of time, at most two units: "45 s", "3 min", "2 h 5 min", "3 d 4 h". */
export function duration(ms: number): string {
  const s = Math.round(Math.abs(ms) / 1000);
  if (s < 60) return `${s} s`;
  const min = Math.floor(s / 60);
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  if (h < 48) return min % 60 === 0 ? `${h} h` : `${h} h ${min % 60} min`;
  const d = Math.floor(h / 24);
  return h % 24 === 0 ? `${d} d` : `${d} d ${h % 24} h`;
}

/** "3 min ago", or "in 40 s" for an instant still to come; "just now" within two seconds. */
export function age(at: number | string, now: number): string {
  const ms = typeof at === 'number' ? at : Date.parse(at);
  if (Number.isNaN(ms)) return '';
  const d = now - ms;
  if (Math.abs(d) < 2_000) return 'just now';
  return d > 0 ? `${duration(d)} ago` : `in ${duration(d)}`;
}

/** "2026-11-22T10:00:00Z (3 min ago)" */
export function when(at: number | string, now: number): string {
  return `${iso(at)} (${age(at, now)})`;
}

/**
 * A text cut to `max` characters at a word boundary, marked with "…", whitespace runs collapsed so a
 * downstream's multi-line message stays on its row. A single word longer than `max` is cut inside.
 */
export function shorten(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  if (flat.length <= max) return flat;
  const room = flat.slice(0, max - 1);
  const space = room.lastIndexOf(' ');
  const cut = space >= max / 2 ? room.slice(0, space) : room;
  return `${cut.replace(/[\s,.;:–-]+$/, '')}…`;
}

/** Columns padded to their widest cell, two spaces apart; the last column is not padded. */
export function table(rows: string[][]): string[] {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd());
}

export function bar(done: number, total: number, width = 30): string {
  const filled = total <= 0 ? width : Math.min(width, Math.round((done / total) * width));
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}`;
}

export function plural(n: number, word: string, many = `${word}s`): string {
  return `${n} ${n === 1 ? word : many}`;
}
