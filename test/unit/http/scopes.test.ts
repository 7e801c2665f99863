import { describe, expect, it } from 'vitest';
import { ProblemError } from '../../../shared/http/problem.js';
import { assertInScope, inScope, scopeMiss, type CallerScope } from '../../../shared/http/scopes.js';

/** Issue 20, item 5: the scope rules as a table; test/integration/scopes.test.ts runs them through the routes. */
const scope: CallerScope = { systems: ['nif-membership', 'kontantanalys'], nifClubs: ['4568'], kontantanalysKeys: ['alice-*', 'atm-main'] };

describe('caller scopes', () => {
  it.each<[string, Parameters<typeof scopeMiss>[1], ReturnType<typeof scopeMiss>]>([
    ['a system in scope, its club', { system: 'nif-membership', tenant: '4568', key: '4568:x' }, undefined],
    ['another club', { system: 'nif-membership', tenant: '45680', key: '45680:x' }, { what: 'club', pointer: 'header:ClubId' }],
    ['a system out of scope', { system: 'cambio', tenant: 'default', key: 'c-1' }, { what: 'system' }],
    ['the system alone, before the body names a club', { system: 'nif-membership' }, undefined],
    ['a Kontantanalys key by prefix', { system: 'kontantanalys', tenant: 'default', key: 'services:alice-atm-1' }, undefined],
    ['a Kontantanalys key exactly', { system: 'kontantanalys', tenant: 'default', key: 'providers:atm-main' }, undefined],
    ['a longer key than the exact one', { system: 'kontantanalys', tenant: 'default', key: 'providers:atm-main-2' }, { what: 'key', pointer: 'path:externalId' }],
    ["another's Kontantanalys key", { system: 'kontantanalys', tenant: 'default', key: 'services:bob-atm' }, { what: 'key', pointer: 'path:externalId' }],
    ["the run summary, which reports on every object", { system: 'kontantanalys', tenant: 'default', key: 'run:latest' }, { what: 'key', pointer: 'path:externalId' }],
  ])('%s', (_what, target, expected) => {
    expect(scopeMiss(scope, target)).toEqual(expected);
    expect(inScope(scope, target)).toBe(expected === undefined);
  });

  it('no scope, or a scope without a member, narrows nothing', () => {
    for (const target of [{ system: 'cambio', tenant: 'default', key: 'c' }, { system: 'nif-corporate', tenant: '1', key: '1:x' }, { system: 'kontantanalys', tenant: 'default', key: 'run:latest' }]) {
      expect(inScope(undefined, target)).toBe(true);
      expect(inScope({}, target)).toBe(true);
    }
    expect(inScope({ nifClubs: ['4568'] }, { system: 'nif', tenant: 'default', key: 'x' })).toBe(true);
  });

  it('refuses with a 403 out-of-scope problem naming where the caller chose the target', () => {
    const thrown = (() => {
      try {
        assertInScope(scope, { system: 'nif-membership', tenant: '16235', key: '16235:x' });
      } catch (err) {
        return err;
      }
    })() as ProblemError;
    expect(thrown).toBeInstanceOf(ProblemError);
    expect(thrown).toMatchObject({ status: 403, slug: 'out-of-scope', errors: [{ pointer: 'header:ClubId', detail: 'is not one this caller may post to' }] });
    expect(() => assertInScope(scope, { system: 'nif-membership', tenant: '4568', key: '4568:x' })).not.toThrow();
  });
});
