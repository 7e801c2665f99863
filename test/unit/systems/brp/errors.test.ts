import { describe, expect, it } from 'vitest';
import type { Observation } from '../../../../shared/core/classify.js';
import { classifyBrp } from '../../../../shared/systems/brp/errors.js';

const res = (status: number, body: unknown, headers: Record<string, string> = {}): Observation => ({ kind: 'response', status, headers, body, text: JSON.stringify(body) });

describe('classifyBrp: errors as {errors: [{code, message, debuginfo}]}', () => {
  it('keeps every code and message of a rejection, with the debug info', () => {
    const out = classifyBrp(res(400, { errors: [{ code: 'PRODUCT_NOT_FOUND', message: 'Produkten finns inte', debuginfo: 'productid=99' }, { code: 'X', message: 'y' }] }), 0);
    expect(out).toEqual({
      type: 'rejected',
      httpStatus: 400,
      code: 'PRODUCT_NOT_FOUND,X',
      message: 'PRODUCT_NOT_FOUND: Produkten finns inte — productid=99; X: y',
      body: { errors: [{ code: 'PRODUCT_NOT_FOUND', message: 'Produkten finns inte', debuginfo: 'productid=99' }, { code: 'X', message: 'y' }] },
    });
  });
  it('401 with an errors list is auth with the BRP message; 429 honours Retry-After', () => {
    expect(classifyBrp(res(401, { errors: [{ code: 'INVALID_APIKEY', message: 'apikey saknas' }] }), 0)).toMatchObject({ type: 'auth', message: 'INVALID_APIKEY: apikey saknas' });
    expect(classifyBrp(res(429, { errors: [{ code: 'TOO_MANY_REQUESTS', message: 'x' }] }, { 'retry-after': '2' }), 0)).toMatchObject({ type: 'rate_limited', waitMs: 2_000 });
  });
  it('2xx is posted, 5xx after send is ambiguous, a body without errors falls back', () => {
    expect(classifyBrp(res(201, { order: { id: 1 } }), 0).type).toBe('posted');
    expect(classifyBrp(res(502, { errors: [] }), 0).type).toBe('ambiguous');
    expect(classifyBrp(res(404, 'Not found'), 0)).toMatchObject({ type: 'rejected', httpStatus: 404 });
  });
});
