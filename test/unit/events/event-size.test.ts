import { describe, expect, it } from 'vitest';

describe('an event stays under Standard Webhooks\' 20 KB whatever the downstream answered (issue 21 review)', () => {
  it('keeps a downstream reference only when it is a short id', async () => {
    const { eventOf, stampEvent } = await import('../../../shared/events/model.js');
    const { MAX_EVENT_BYTES } = await import('../../../shared/events/deliver.js');
    const huge = 'x'.repeat(30_000);
    const record = stampEvent(
      {
        pk: 'nif#t#k1', system: 'nif', tenant: 't', key: 'k1', status: 'posted', version: 1, revision: 1, payloadHash: 'h', request: {}, caller: 'pos',
        attempts: 1, failures: 0, budgetFrom: 0, checkpoints: { orderId: huge }, result: { httpStatus: 200, body: { paymentId: huge } },
        history: [{ at: '2026-12-07T00:00:00.000Z', event: 'posted' }], correlationId: 'c', createdAt: '2026-12-07T00:00:00.000Z', updatedAt: '2026-12-07T00:00:00.000Z', ttl: 0,
      },
      1,
    );
    const body = JSON.stringify(eventOf(record));
    expect(Buffer.byteLength(body)).toBeLessThan(MAX_EVENT_BYTES);
    expect(eventOf(record)?.data.reference).toEqual({});
  });
});
