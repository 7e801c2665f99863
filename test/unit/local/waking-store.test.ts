import { describe, expect, it } from 'vitest';
import type { PaymentRecord } from '../../../shared/core/types.js';
import { stampForWrite } from '../../../shared/events/model.js';
import { wakingStore } from '../../../shared/local/stack.js';
import type { RecordStore } from '../../../shared/store/port.js';

/** A store that stamps as DynamoRecordStore.item() does: on the record object it is handed. */
function stampingStore(): RecordStore {
  const items = new Map<string, PaymentRecord>();
  return {
    claim: async (record) => {
      items.set(record.pk, stampForWrite(record, Date.now()));
      return { claimed: true };
    },
    replace: async (record) => {
      items.set(record.pk, stampForWrite(record, Date.now()));
      return true;
    },
    get: async (pk) => items.get(pk),
    getMany: async () => new Map(),
    due: async () => [],
    list: async () => ({ payments: [] }) as never,
  };
}

const record = (status: PaymentRecord['status']): PaymentRecord => ({
  pk: 'cambio#default#wake-1', system: 'cambio', tenant: 'default', key: 'wake-1', status, version: 1, revision: 1, budgetFrom: 0, payloadHash: 'h',
  request: {}, attempts: 1, failures: 0, checkpoints: {}, history: [{ at: new Date(0).toISOString(), event: 'received' }], correlationId: 'wake-1',
  createdAt: new Date(0).toISOString(), createdMs: 0, updatedAt: new Date(0).toISOString(), ttl: 0,
});

describe("the local stack's store wakes the events relay (issue 21)", () => {
  it('after a write that stamped an event, though the store stamped it on the record it was handed', async () => {
    let woken = 0;
    const store = wakingStore(stampingStore(), () => woken++);
    await store.claim(record('posted'));
    expect(woken).toBe(1);
    await store.replace(record('held'), 1);
    expect(woken).toBe(2);
  });

  it('not after a write that stamped nothing', async () => {
    let woken = 0;
    const store = wakingStore(stampingStore(), () => woken++);
    await store.claim(record('retrying'));
    expect(woken).toBe(0);
  });
});
