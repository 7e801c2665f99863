import { describe, expect, it } from 'vitest';
import type { Observation } from '../../../../shared/core/classify.js';
import { classifyNif, findNifCode, NIF_CODES } from '../../../../shared/systems/nif/errors.js';

const res = (status: number, body: unknown, text = JSON.stringify(body)): Observation => ({ kind: 'response', status, headers: {}, body, text });

describe('NIF error codes, read from undocumented body shapes', () => {
  it.each(Object.keys(NIF_CODES))('code %s maps to a 422-worthy rejection with its meaning', (code) => {
    const out = classifyNif(res(400, { code: Number(code), message: 'x' }), 0);
    expect(out).toMatchObject({ type: 'rejected', code, httpStatus: 400 });
    expect((out as { message: string }).message).toContain(NIF_CODES[code]);
  });

  it.each([
    ['{code, message}', { code: 3000, message: 'Period from and period to are not having same year.' }],
    ['{Code} as a string', { Code: '3000', Message: 'x' }],
    ['{errorCode, errorMessage}', { errorCode: 3000, errorMessage: 'x' }],
    ['{ErrorCode}', { ErrorCode: '3000' }],
    ['{errors: [{code}]}', { errors: [{ code: '3000', message: 'x' }] }],
    ['{error: {code}}', { error: { code: 3000 } }],
    ['{statusCode: 3000}', { statusCode: 3000, message: 'x' }],
    ['{message: "3000: ..."}', { message: '3000: PeriodFrom and PeriodTo is not in same year' }],
    ['{message: "Error code 3000"}', { message: 'Validation failed, error code 3000' }],
  ])('%s', (_name, body) => {
    expect(findNifCode(body, JSON.stringify(body)).code).toBe('3000');
  });

  it('reads a code from a plain-text body and keeps the raw text', () => {
    const out = classifyNif(res(400, undefined, '1002: PersonId does not exist'), 0);
    expect(out).toMatchObject({ type: 'rejected', code: '1002', message: 'PersonId does not exist (NIF said: 1002: PersonId does not exist)' });
  });

  it('a documented code inside a 200 is still a rejection', () => {
    expect(classifyNif(res(200, { resultCode: 3001, message: 'Membership not found' }), 0)).toMatchObject({ type: 'rejected', code: '3001' });
  });

  it('success bodies and unknown codes are not mistaken for NIF codes', () => {
    const ok = { message: 'Payment details added for membership of 9283002 with 16235 for period 2020-07-01 to 2020-12-31.', updatedPersonId: 9283002, paymentTypeId: 0, paymentId: 1206920, paymentCategory: 'x' };
    expect(classifyNif(res(200, ok), 0)).toMatchObject({ type: 'posted' });
    expect(classifyNif(res(400, { code: 4242, message: 'Something else' }), 0)).toMatchObject({ type: 'rejected', message: 'Something else' });
    expect(classifyNif(res(401, { statusCode: 401, message: 'Invalid token' }), 0)).toMatchObject({ type: 'auth' });
    expect(classifyNif(res(429, { message: 'Try again in 3 seconds' }), 0)).toMatchObject({ type: 'rate_limited', waitMs: 3_000 });
  });
});
