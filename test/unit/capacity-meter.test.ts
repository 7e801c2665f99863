import { describe, expect, it } from 'vitest';
import type { DynamoExchange } from '../../shared/local/dynamo-tap.js';
import { CapacityMeter, itemSize, readUnits, valueSize, writeUnits } from '../helpers/dynamo-capacity.js';

/** The capacity figures of docs/capacity.md come from this meter: its rules, case by case. */

const exchange = (operation: string, request: Record<string, unknown>, status = 200, response = ''): DynamoExchange => ({ operation, request, status, response, startedAt: 0, endedAt: 0 });
const put = (item: Record<string, unknown>, status = 200) => exchange('PutItem', { TableName: 't', Item: item }, status);

describe('item sizes as the DynamoDB Developer Guide counts them', () => {
  it.each([
    ['a string: its UTF-8 bytes', { S: 'Örebro' }, 7],
    ['a number: one byte per two significant digits, plus one', { N: '1764000000123' }, 8],
    ['a number with trailing zeros trimmed', { N: '45000' }, 2],
    ['a boolean', { BOOL: true }, 1],
    ['null', { NULL: true }, 1],
    ['an empty map', { M: {} }, 3],
    ['a map: 3, and 1 per element with its name and value', { M: { ab: { S: 'xyz' } } }, 3 + 1 + 2 + 3],
    ['a list: 3, and 1 per element', { L: [{ N: '1' }, { S: 'a' }] }, 3 + (1 + 2) + (1 + 1)],
  ])('%s', (_, value, bytes) => {
    expect(valueSize(value)).toBe(bytes);
  });

  it('an item adds each attribute name', () => {
    expect(itemSize({ pk: { S: 'cambio#default#x' }, ttl: { N: '1800000123' } })).toBe(2 + 16 + 3 + 6);
  });

  it('rounds writes up to started KB and reads to started 4 KB, halved when eventually consistent', () => {
    expect([writeUnits(0), writeUnits(1024), writeUnits(1025)]).toEqual([1, 1, 2]);
    expect([readUnits(0, true), readUnits(4096, true), readUnits(4097, true), readUnits(100, false)]).toEqual([1, 1, 2, 0.5]);
  });
});

describe('index writes of a keys-only, sparse index', () => {
  const record = (status: string, due?: number) => ({
    pk: { S: 'cambio#default#k' },
    statusShard: { S: `cambio#${status}#3` },
    createdMs: { N: '1764000000000' },
    ...(due === undefined ? {} : { dueShard: { S: 'cambio#due#3' }, nextAttemptAt: { N: String(due) } }),
  });

  it('a new item in both indexes: one put each', () => {
    const charge = new CapacityMeter().charge(put(record('retrying', 1)));
    expect(charge.indexWrites.map((w) => `${w.index} ${w.kind} ${w.partition}`)).toEqual(['due-index put cambio#due#3', 'status-index put cambio#retrying#3']);
  });

  it('settling: the due key goes (one delete), the status key changes (delete and put)', () => {
    const meter = new CapacityMeter();
    meter.charge(put(record('retrying', 1)));
    const charge = meter.charge(put(record('posted')));
    expect(charge.indexWrites.map((w) => `${w.index} ${w.kind} ${w.partition}`)).toEqual(['due-index delete cambio#due#3', 'status-index delete cambio#retrying#3', 'status-index put cambio#posted#3']);
  });

  it('a new schedule moves the due key (two writes) and leaves the status index alone', () => {
    const meter = new CapacityMeter();
    meter.charge(put(record('retrying', 1)));
    expect(meter.charge(put(record('retrying', 2))).indexWrites.map((w) => w.kind)).toEqual(['delete', 'put']);
    expect(meter.charge(put({ ...record('retrying', 2), history: { L: [] } })).indexWrites).toEqual([]);
  });

  it('a refused condition costs the existing item, at least one unit, and changes nothing', () => {
    const meter = new CapacityMeter();
    const big = { ...record('retrying', 1), request: { S: 'x'.repeat(2900) } };
    meter.charge(put(big));
    const refused = meter.charge(put(record('retrying', 1), 400));
    expect(refused).toMatchObject({ ok: false, tableWrite: 3, indexWrites: [] });
    expect(meter.item('cambio#default#k')).toEqual(big);
    expect(new CapacityMeter().charge(put(record('posted'), 400)).tableWrite).toBe(1);
  });
});

describe('updates as this code base writes them', () => {
  it('SET with if_not_exists keeps the first value; the larger of before and after is charged', () => {
    const meter = new CapacityMeter();
    const consume = (n: number, ttl: number) =>
      exchange('UpdateItem', {
        Key: { pk: { S: 'fence#a' } },
        UpdateExpression: 'SET #ttl = if_not_exists(#ttl, :ttl), #c0 = :d0',
        ExpressionAttributeNames: { '#ttl': 'ttl', '#c0': `c${n}` },
        ExpressionAttributeValues: { ':ttl': { N: String(ttl) }, ':d0': { N: '1764000000000' } },
      });
    meter.charge(consume(0, 100));
    meter.charge(consume(1, 200));
    expect(meter.item('fence#a')).toEqual({ pk: { S: 'fence#a' }, ttl: { N: '100' }, c0: { N: '1764000000000' }, c1: { N: '1764000000000' } });
  });

  it('refuses an update form it does not model', () => {
    expect(() => new CapacityMeter().charge(exchange('UpdateItem', { Key: { pk: { S: 'x' } }, UpdateExpression: 'ADD n :one' }))).toThrow(/does not model/);
  });
});
