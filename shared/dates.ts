/** A calendar date `YYYY-MM-DD` in a time zone: the documents' "today" and "this year" are local. */
export function dateIn(timeZone: string, ms: number): string {
  return new Intl.DateTimeFormat('sv-SE', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(ms));
}

/** Norway's date: NIF's "this year" (seed 004). */
export const osloDate = (ms: number) => dateIn('Europe/Oslo', ms);

/** Sweden's date: Tillväxtverket's "today" for timelinessDate (seed 001). */
export const stockholmDate = (ms: number) => dateIn('Europe/Stockholm', ms);
