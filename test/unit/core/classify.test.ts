import { describe, expect, it } from 'vitest';
import { classify, type Observation } from '../../../shared/core/classify.js';

const NOW = Date.parse('2026-11-22T12:00:00Z');
const res = (status: number, body: unknown = {}, headers: Record<string, string> = {}): Observation => ({
  kind: 'response',
  status,
  headers,
  body,
  text: JSON.stringify(body),
});
const err = (code: string, sent: boolean): Observation => ({ kind: 'error', code, sent, message: code });

describe('classify: DESIGN.md outcomes table', () => {
  it.each([
    ['200', res(200, [{ ResultCode: 'OK' }]), 'posted'],
    ['201', res(201), 'posted'],
    ['204', res(204), 'posted'],
    ['429', res(429, { message: 'Rate limit is exceeded. Try again in 5 seconds.' }), 'rate_limited'],
    ['503', res(503), 'retryable'],
    ['connection refused', err('ECONNREFUSED', false), 'retryable'],
    ['connect timeout', err('UND_ERR_CONNECT_TIMEOUT', false), 'retryable'],
    ['500', res(500), 'ambiguous'],
    ['502', res(502), 'ambiguous'],
    ['504', res(504), 'ambiguous'],
    ['408', res(408), 'ambiguous'],
    ['headers timeout after send', err('UND_ERR_HEADERS_TIMEOUT', true), 'ambiguous'],
    ['reset after send', err('ECONNRESET', true), 'ambiguous'],
    ['400', res(400, { message: 'bad' }), 'rejected'],
    ['404', res(404), 'rejected'],
    ['409', res(409), 'rejected'],
    ['422', res(422), 'rejected'],
    ['401', res(401, { statusCode: 401, message: 'Invalid access token.' }), 'auth'],
    ['403', res(403, { statusCode: 403, message: 'Insufficient scope.' }), 'auth'],
  ])('%s → %s', (_name, obs, expected) => {
    expect(classify(obs, NOW).type).toBe(expected);
  });

  it('a 429 carries the stated wait from the body or Retry-After', () => {
    expect(classify(res(429, { message: 'Rate limit is exceeded. Try again in 5 seconds.' }), NOW)).toMatchObject({ waitMs: 5_000 });
    expect(classify(res(429, {}, { 'Retry-After': '12' }), NOW)).toMatchObject({ waitMs: 12_000 });
    expect(classify(res(429, {}), NOW)).toMatchObject({ type: 'rate_limited', waitMs: undefined });
  });

  it('keeps the downstream message', () => {
    expect(classify(res(403, { statusCode: 403, message: 'Insufficient scope.' }), NOW)).toMatchObject({ message: 'Insufficient scope.', httpStatus: 403 });
    expect(classify(res(400, { error: 'invalid_request' }), NOW)).toMatchObject({ message: 'invalid_request' });
  });
});
