import type { PaymentRecord } from '../../shared/core/types.js';

/**
 * A first-generation NIF payment record as the store holds it, still being worked on (`retrying`), with a
 * personId and a comment in its request: the events' unit tests stamp and hand on copies of it.
 */
export const NIF_RECORD: PaymentRecord = {
  pk: 'nif#t#club:1',
  system: 'nif',
  tenant: 't',
  key: 'club:1',
  status: 'retrying',
  version: 1,
  revision: 1,
  payloadHash: 'h',
  request: { payment: { personId: 9283002, comment: 'private' } },
  caller: 'pos',
  attempts: 0,
  failures: 0,
  budgetFrom: 0,
  checkpoints: {},
  history: [{ at: '2026-12-07T00:00:00.000Z', event: 'received' }],
  correlationId: 'c',
  createdAt: '2026-12-07T00:00:00.000Z',
  updatedAt: '2026-12-07T00:00:00.000Z',
  ttl: 0,
};
