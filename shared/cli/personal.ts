/**
 * Keeps personal data out of what the command prints (issue 15). The request is shown only as the
 * status route shows it (the module's `publicRequest`); this covers the rest: texts a downstream wrote
 * (NIF's messages name the person: "Payment details added for membership of 8675682 ..."), the body
 * it answered with, and what an operator typed as evidence.
 *
 * Two rules, both on free text:
 * - the person identifiers of this record's own request (NIF and BRP `personId`, Cambio's `patient`)
 *   are hidden wherever they appear, at any length;
 * - any other run of 7 or more digits is hidden unless the record shows it anyway as an id (its key,
 *   its checkpoints, a non-personal field of its request). Person numbers are that long (NIF person
 *   ids, Swedish and Norwegian national identity numbers); error codes, org and club ids, dates and
 *   most amounts are shorter. A shorter number naming someone other than this record's person cannot
 *   be told from an org id or an amount, so it is not hidden.
 * Record keys are ids and are shown as they are.
 */

export const HIDDEN = '[hidden]';

/** Field names that hold a person's identity: personId, updatedPersonId, PersonId, patient, personnummer. */
const PERSONAL_FIELD = /(person(id)?|patient|personnummer|ssn)$/i;
/** A Swedish personnummer written with its separator (YYMMDD-NNNN, YYYYMMDD-NNNN). */
const PERSONNUMMER = /(?<![A-Za-z0-9])(?:\d{6}|\d{8})[-+]\d{4}(?![A-Za-z0-9])/g;
const LONG_DIGITS = /(?<![A-Za-z0-9])\d{7,}(?![A-Za-z0-9])/g;

export interface Scrubber {
  /** Free text with person identifiers hidden. */
  text(s: string): string;
  /** A structure (a downstream's body, a public request) with person identifiers hidden. */
  value(v: unknown): unknown;
}

function walk(v: unknown, visit: (key: string, value: unknown) => void, depth = 0): void {
  if (depth > 20 || v === null || typeof v !== 'object') return;
  for (const [k, child] of Object.entries(v as Record<string, unknown>)) {
    visit(k, child);
    walk(child, visit, depth + 1);
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A scrubber for texts about one record: `record.request` is the stored (raw) request. */
export function scrubberFor(record: {
  key: string;
  request?: Record<string, unknown>;
  checkpoints?: Record<string, unknown>;
  error?: { code?: string };
  revisions?: { error?: { code?: string } }[];
}): Scrubber {
  const personal = new Set<string>();
  const shownIds = new Set<string>();
  const idsIn = (text: string) => {
    for (const m of text.matchAll(/\d{7,}/g)) shownIds.add(m[0]);
  };
  walk(record.request ?? {}, (key, value) => {
    if (typeof value !== 'string' && typeof value !== 'number') return;
    const text = String(value).trim();
    if (PERSONAL_FIELD.test(key)) {
      if (text) personal.add(text);
    } else if (/^\d+$/.test(text)) shownIds.add(text);
  });
  idsIn(record.key);
  idsIn(JSON.stringify(record.checkpoints ?? {}));
  for (const p of personal) {
    shownIds.delete(p);
    for (const m of p.matchAll(/\d{7,}/g)) shownIds.delete(m[0]);
  }
  // Longest first, so a value that contains another is hidden whole.
  const exact = [...personal]
    .sort((a, b) => b.length - a.length)
    .map((p) => (/^\d+$/.test(p) ? new RegExp(`(?<!\\d)${p}(?!\\d)`, 'g') : new RegExp(escapeRegExp(p), 'g')));

  // The engine writes a downstream's code first ("3001: no membership ..."): a code is not a person,
  // even where a sandbox's person id is the very number that provokes it.
  const codes = [record.error?.code, ...(record.revisions ?? []).map((r) => r.error?.code)].filter((c): c is string => Boolean(c));
  const text = (s: string): string => {
    const code = codes.find((c) => s.startsWith(`${c}: `));
    if (code) return `${code}: ${scrubText(s.slice(code.length + 2))}`;
    return scrubText(s);
  };
  const scrubText = (s: string): string => {
    let out = s;
    for (const re of exact) out = out.replace(re, HIDDEN);
    out = out.replace(PERSONNUMMER, HIDDEN);
    return out.replace(LONG_DIGITS, (digits) => (shownIds.has(digits) ? digits : HIDDEN));
  };

  const value = (v: unknown, depth = 0): unknown => {
    if (typeof v === 'string') return text(v);
    if (typeof v === 'number') return personal.has(String(v)) ? HIDDEN : v;
    if (depth > 20 || v === null || typeof v !== 'object') return v;
    if (Array.isArray(v)) return v.map((x) => value(x, depth + 1));
    const out: Record<string, unknown> = {};
    for (const [k, child] of Object.entries(v as Record<string, unknown>)) {
      // A person field holding a raw id (digits) is hidden; a hashed stand-in (not only digits) is kept.
      const raw = typeof child === 'number' || (typeof child === 'string' && /^[\d\s+-]+$/.test(child.trim()) && child.trim() !== '');
      out[k] = PERSONAL_FIELD.test(k) && raw ? HIDDEN : value(child, depth + 1);
    }
    return out;
  };

  return { text, value: (v) => value(v) };
}

/**
 * An audit entry as shown (the console, `paybridge audit`): what an operator typed (reason, evidence)
 * can name a person, so it is hidden by the rules above; the payment's key is an id.
 */
export function scrubbedEntry<E extends { key: string; reason: string; evidence?: string; result: string }>(e: E): E {
  const scrub = scrubberFor({ key: e.key });
  return { ...e, reason: scrub.text(e.reason), ...(e.evidence ? { evidence: scrub.text(e.evidence) } : {}), result: scrub.text(e.result) };
}
