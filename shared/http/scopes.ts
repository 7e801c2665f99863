import { ProblemError, type FieldError } from './problem.js';

/**
 * What a caller may post to (issue 20, item 5), from CALLER_SCOPES (shared/config.ts parses it). Without
 * a scope a caller may use everything, as before scopes existed; each member narrows one thing, and a
 * member left out narrows nothing.
 */
export interface CallerScope {
  /** The systems it may post to and read (`cambio`, `nif-membership`, ...). */
  systems?: string[];
  /** The NIF ClubIds it may post to on the first-generation routes (the `ClubId` header chooses the club's token). */
  nifClubs?: string[];
  /** The Kontantanalys externalIds it may keep in step: each exact, or a prefix ending in `*`. */
  kontantanalysKeys?: string[];
}

/** The first-generation NIF systems: their record's tenant is the ClubId. */
const CLUB_SYSTEMS = new Set(['nif-membership', 'nif-corporate']);

/** A record, or a request about to become one: its system, tenant and key as the record has them. */
export interface ScopeTarget {
  system: string;
  tenant?: string;
  key?: string;
}

/** What put a target outside a scope, and where the caller chose it. */
export type ScopeMiss = { what: 'system' } | { what: 'club'; pointer: string } | { what: 'key'; pointer: string };

function matches(pattern: string, value: string): boolean {
  return pattern.endsWith('*') ? value.startsWith(pattern.slice(0, -1)) : value === pattern;
}

/** Why `target` is outside `scope`, or undefined when it is inside (or there is no scope). Pure. */
export function scopeMiss(scope: CallerScope | undefined, target: ScopeTarget): ScopeMiss | undefined {
  if (!scope) return undefined;
  if (scope.systems && !scope.systems.includes(target.system)) return { what: 'system' };
  if (scope.nifClubs && CLUB_SYSTEMS.has(target.system) && target.tenant !== undefined && !scope.nifClubs.includes(target.tenant)) {
    return { what: 'club', pointer: 'header:ClubId' };
  }
  if (scope.kontantanalysKeys && target.system === 'kontantanalys' && target.key !== undefined) {
    // `<resource>:<externalId>`; the scheduled run's summary (`run:latest`) reports on every object, so a
    // caller limited to some keys does not see it.
    const at = target.key.indexOf(':');
    const externalId = target.key.startsWith('run:') || at < 0 ? undefined : target.key.slice(at + 1);
    if (externalId === undefined || !scope.kontantanalysKeys.some((p) => matches(p, externalId))) return { what: 'key', pointer: 'path:externalId' };
  }
  return undefined;
}

/** Whether a caller with `scope` may see or write `target`. */
export function inScope(scope: CallerScope | undefined, target: ScopeTarget): boolean {
  return scopeMiss(scope, target) === undefined;
}

/**
 * Refuses a write outside the caller's scope with a 403, before anything is recorded or sent. It is
 * decided from the configuration and the request alone, never from the store: the answer is the same
 * whether or not the key exists, so it tells nothing about another caller's payments.
 */
export function assertInScope(scope: CallerScope | undefined, target: ScopeTarget): void {
  const miss = scopeMiss(scope, target);
  if (!miss) return;
  const nothing = 'Nothing was recorded or sent. The operator sets what each caller may post to (CALLER_SCOPES).';
  if (miss.what === 'system') {
    throw new ProblemError(403, 'out-of-scope', "Outside this caller's scope", `This caller may not post to ${target.system}. ${nothing}`);
  }
  const errors: FieldError[] = [{ pointer: miss.pointer, detail: `is not one this caller may post to` }];
  const which = miss.what === 'club' ? `ClubId ${target.tenant}` : 'This externalId';
  throw new ProblemError(403, 'out-of-scope', "Outside this caller's scope", `${which} is not one this caller may post to. ${nothing}`, errors);
}
