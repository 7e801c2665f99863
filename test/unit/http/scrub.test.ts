import { describe, expect, it } from 'vitest';
import { scrubber } from '../../../shared/http/payments.js';

describe('scrubber: personal values out of what callers see', () => {
  const scrub = scrubber([
    { value: '4568', shownAs: 'ref:p' },
    { value: 'Kari (cash)', shownAs: 'comment (not shown)' },
  ]);

  it('replaces whole tokens in text, never parts of a longer number or word', () => {
    expect(scrub({ message: 'membership of 4568 with 45680, ref 14568; note: Kari (cash).' })).toEqual({ message: 'membership of ref:p with 45680, ref 14568; note: comment (not shown).' });
  });

  it('replaces numbers only under a key naming a person, and leaves codes, kinds and statuses alone', () => {
    expect(scrub({ updatedPersonId: 4568, personId: [4568], paymentId: 4568, httpStatus: 4568, code: '4568', kind: 'rejected' })).toEqual({
      updatedPersonId: 'ref:p',
      personId: ['ref:p'],
      paymentId: 4568,
      httpStatus: 4568,
      code: '4568',
      kind: 'rejected',
    });
  });

  it('with nothing personal, returns the value unchanged', () => {
    const value = { a: ['4568'] };
    expect(scrubber([])(value)).toBe(value);
    expect(scrubber([{ value: '  ', shownAs: 'x' }])(value)).toBe(value);
  });
});
