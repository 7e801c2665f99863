import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Stack } from '../../shared/local/stack.js';
import { call, holdClaims, testStack } from '../helpers/stack.js';

/**
 * A route's function that runs out of its time: middy answers early, before Lambda's timeout, and API
 * Gateway answers the caller 504. The local gateway answered 500 (seen in `npm run load -- --rate 250`,
 * where overloaded requests waited past the 29 s), which reads as a fault of paybridge's, not a timeout.
 */
describe('a function that runs out of its time (local gateway)', () => {
  let stack: Stack;
  let release: () => void = () => undefined;
  beforeAll(async () => {
    stack = await testStack({ functionTimeoutMs: 400 });
    // The claim's write answers after the function's time (bounded: released in afterAll, or after 3 s).
    release = holdClaims(stack, 'slow-', 3_000);
  });
  afterAll(async () => {
    release();
    await stack?.close();
  });

  it('is answered 504 with a problem document that says where to look, not 500', async () => {
    const reply = await call(stack, 'POST', '/v1/cambio/payment-notices', { status: 'PAID', contactId: 'slow-1', paymentType: 'CARD' });
    expect(reply.status, JSON.stringify(reply.body)).toBe(504);
    expect(reply.headers.get('content-type')).toContain('application/problem+json');
    expect(reply.body).toMatchObject({ status: 504, title: 'Gateway timeout' });
    expect(reply.body.detail).toContain('status route');
  }, 20_000);
});
