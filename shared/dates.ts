/** A calendar date `YYYY-MM-DD` in a time zone: the documents' "today" and "this year" are local. */
export function dateIn(timeZone: string, ms: number): string {
  return new Intl.DateTimeFormat('sv-SE', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(ms));
}

/** Norway's date: NIF's "this year" (seed 004). */
export const osloDate = (ms: number) => dateIn('Europe/Oslo', ms);

/** Sweden's date: Tillväxtverket's "today" for timelinessDate (seed 001). */
export const stockholmDate = (ms: number) => dateIn('Europe/Stockholm', ms);

/**
 * True for a real calendar date `YYYY-MM-DD`: false for `2026-02-30`, and for `0000-00-00`, whose
 * Date is invalid and whose toISOString() throws (a 500 the fuzz test of issue 13 found).
 */
export function isCalendarDate(value: string): boolean {
  const d = new Date(`${value}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().startsWith(value);
}
