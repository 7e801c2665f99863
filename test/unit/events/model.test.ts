import { describe, expect, it } from 'vitest';
import type { PaymentRecord } from '../../../shared/core/types.js';
import { classifyAnswer, nextTryAt, retryAfterMs, RETRY_SCHEDULE_MS } from '../../../shared/events/deliver.js';
import { eventOf, stampEvent, stampForWrite, type OutboxRecord } from '../../../shared/events/model.js';
import { refusedAddress, urlProblems } from '../../../shared/events/ssrf.js';
import { NIF_RECORD } from '../../helpers/records.js';

const base = NIF_RECORD;

/** Writes `next` as the store would: stamped, with what the write carried forward. */
const write = (r: OutboxRecord, now = 1_000) => stampEvent(r, now);

describe('stampEvent: the outbox in the record write (issue 21)', () => {
  it('stamps nothing while the payment is being worked on', () => {
    const r = write(base);
    expect(r.lastEvent).toBeUndefined();
    expect(r.eventsKey).toBeUndefined();
    expect(r.eventNew).toBeUndefined();
  });

  it('stamps one event when a reported status is reached, and none on later writes of that status', () => {
    const posted = write({ ...base, status: 'posted', result: { httpStatus: 200, body: { paymentId: 1200001, updatedPersonId: 9283002 } } });
    expect(posted.lastEvent).toMatchObject({ seq: 1, type: 'payment.posted', status: 'posted', revision: 1 });
    expect(posted.eventsKey).toMatch(/^pending#\d$/);
    expect(posted.eventNew).toBe(posted.lastEvent?.id);
    // A later write (the confirmation, a sweep) carries the marker forward: no second event, and the stream marker goes.
    const again = write({ ...posted, history: [...posted.history, { at: 'x', event: 'confirmed' }] }, 2_000);
    expect(again.lastEvent).toEqual(posted.lastEvent);
    expect(again.eventNew).toBeUndefined();
  });

  it('makes the same id when the same write is made again (a retried write), and a new id per sequence', () => {
    const a = write({ ...base, status: 'held' }, 1_000);
    const b = write({ ...base, status: 'held' }, 5_000);
    expect(a.lastEvent?.id).toBe(b.lastEvent?.id);
    const redriven = write({ ...a, status: 'retrying', history: [...a.history, { at: '2026-12-07T01:00:00.000Z', event: 'redriven' }] });
    expect(redriven.lastEvent).toMatchObject({ seq: 2, type: 'payment.redriven', status: 'retrying', previousId: a.lastEvent?.id });
    const heldAgain = write({ ...redriven, status: 'held', history: [...redriven.history, { at: 'y', event: 'held' }] });
    expect(heldAgain.lastEvent).toMatchObject({ seq: 3, type: 'payment.held' });
    expect(new Set([a.lastEvent?.id, redriven.lastEvent?.id, heldAgain.lastEvent?.id]).size).toBe(3);
  });

  it('reports each operator decision once, and a new revision that fails again', () => {
    const unknown = write({ ...base, status: 'unknown' });
    const resolved = write({ ...unknown, status: 'failed', history: [...unknown.history, { at: 't1', event: 'resolved_not_posted' }] });
    expect(resolved.lastEvent).toMatchObject({ type: 'payment.resolved', status: 'failed', seq: 2 });
    expect(write(resolved).lastEvent).toEqual(resolved.lastEvent);
    const reposted = write({ ...resolved, status: 'retrying', revision: 2, history: [...resolved.history, { at: 't2', event: 'reposted' }] });
    expect(reposted.lastEvent).toMatchObject({ type: 'payment.reposted', revision: 2, seq: 3 });
    const failed = write({ ...reposted, status: 'failed', history: [...reposted.history, { at: 't3', event: 'rejected' }] });
    expect(failed.lastEvent).toMatchObject({ type: 'payment.failed', revision: 2, seq: 4 });
  });

  it('builds an event with the downstream reference and no personal data', () => {
    const posted = write({ ...base, status: 'posted', result: { httpStatus: 200, body: { paymentId: 1200001, updatedPersonId: 9283002 } } });
    const event = eventOf(posted);
    expect(event).toMatchObject({ type: 'payment.posted', data: { system: 'nif', key: 'club:1', sequence: 1, status: 'posted', statusUrl: '/v1/payments/nif/club%3A1', reference: { nifPaymentId: 1200001 } } });
    expect(JSON.stringify(event)).not.toMatch(/9283002|private|personId|comment|patient/);
  });
});

describe('the payment\'s name on the events bus (eventSubject)', () => {
  it('is the key, except a NIF natural key (it holds the personId): the ExternalId derived for it, as the HTTP event names it', () => {
    expect(write({ ...base, status: 'posted' }).eventSubject).toBe('club:1');
    const natural = { ...base, system: 'nif-membership', key: '4568:natural:9283002:7896:0:2015-05-08:2015-06-08', status: 'posted' as const, request: { clubId: '4568', payment: { personId: 9283002, externalId: 'pbDerived' } } };
    const stamped = write(natural);
    expect(stamped.eventSubject).toBe('pbDerived');
    expect(eventOf(stamped)?.data.externalId).toBe(stamped.eventSubject);
    expect(write({ ...natural, request: { clubId: '4568', payment: { personId: 9283002 } } }).eventSubject).not.toContain('9283002');
  });

  it('is carried forward to the engine\'s own copy with the rest of the outbox, so a later write keeps it', () => {
    const record: PaymentRecord = { ...base, status: 'posted' };
    stampForWrite(record, 1_000);
    expect((record as OutboxRecord).eventSubject).toBe('club:1');
  });
});

describe('delivery rules', () => {
  it('classifies answers as Standard Webhooks says', () => {
    expect(classifyAnswer(204, undefined)).toBe('delivered');
    expect(classifyAnswer(410, undefined)).toBe('gone');
    for (const s of [429, 502, 504]) expect(classifyAnswer(s, undefined)).toBe('slow-down');
    expect(classifyAnswer(503, '30')).toBe('slow-down');
    expect(classifyAnswer(500, undefined)).toBe('failed');
    expect(classifyAnswer(0, undefined)).toBe('failed');
    expect(classifyAnswer(301, undefined)).toBe('failed');
  });

  it('follows the schedule (about three days over ten tries) and then gives up', () => {
    const total = RETRY_SCHEDULE_MS.reduce((a, b) => a + b, 0);
    expect(total / 86_400_000).toBeGreaterThan(2.9);
    expect(total / 86_400_000).toBeLessThan(3.2);
    expect(nextTryAt(1, 0, { schedule: RETRY_SCHEDULE_MS, jitter: 0 }, Math.random)).toBe(5_000);
    expect(nextTryAt(9, 0, { schedule: RETRY_SCHEDULE_MS, jitter: 0 }, Math.random)).toBe(86_400_000);
    expect(nextTryAt(10, 0, { schedule: RETRY_SCHEDULE_MS, jitter: 0 }, Math.random)).toBeUndefined();
    const jittered = nextTryAt(2, 0, { schedule: RETRY_SCHEDULE_MS, jitter: 0.2 }, () => 1);
    expect(jittered).toBe(360_000);
    expect(retryAfterMs('7', 0)).toBe(7_000);
    expect(retryAfterMs('soon', 0)).toBeUndefined();
  });

  it('refuses URLs into the network (SSRF), allowing loopback only locally', () => {
    expect(urlProblems('http://example.com/hook', { allowLoopback: false })).toEqual(['must be https']);
    expect(urlProblems('https://169.254.169.254/latest', { allowLoopback: false })[0]).toMatch(/inside the network/);
    expect(urlProblems('https://[::ffff:10.0.0.1]/', { allowLoopback: false })[0]).toMatch(/inside the network/);
    expect(urlProblems('https://localhost/x', { allowLoopback: false })[0]).toMatch(/localhost/);
    expect(urlProblems('http://127.0.0.1:9/x', { allowLoopback: true })).toEqual([]);
    expect(urlProblems('http://10.1.2.3/x', { allowLoopback: true })[0]).toMatch(/https|inside/);
    expect(urlProblems('https://hooks.example.com/x', { allowLoopback: false })).toEqual([]);
    expect(refusedAddress('192.168.1.1', true)).toBeDefined();
    expect(refusedAddress('93.184.216.34', false)).toBeUndefined();
  });
});

describe('the event status URL', () => {
  it('is the route the record is shown on, as the system modules spell it', async () => {
    const { kontantanalysPath } = await import('../../../shared/systems/kontantanalys/describe.js');
    const r = stampEvent({ ...base, pk: 'kontantanalys#t#providers:a/b%', system: 'kontantanalys', key: 'providers:a/b%', status: 'failed' }, 1);
    expect(eventOf(r)?.data.statusUrl).toBe(kontantanalysPath('providers:a/b%'));
    expect(stampEvent({ ...base, system: 'kontantanalys', key: 'run:latest', status: 'posted' }, 1).lastEvent).toBeUndefined();
  });
});

describe('the outbox across writes made from the engine\'s own copy', () => {
  it('puts what it stamped on the caller\'s record, so the next change gets the next sequence number', async () => {
    const { stampForWrite } = await import('../../../shared/events/model.js');
    const held: OutboxRecord = { ...base, status: 'held' };
    stampForWrite(held, 1);
    expect(held.lastEvent?.seq).toBe(1);
    // The engine's next record is built from its copy, not read back.
    const redriven: OutboxRecord = { ...held, status: 'retrying', history: [...held.history, { at: 't', event: 'redriven' }] };
    stampForWrite(redriven, 2);
    const posted = stampForWrite({ ...redriven, status: 'posted' } as OutboxRecord, 3);
    expect(posted.lastEvent).toMatchObject({ seq: 3, type: 'payment.posted' });
    // Nothing was handed on in between: all three wait on the record, oldest first.
    expect(posted.pendingEvents?.map((e) => e.type)).toEqual(['payment.held', 'payment.redriven', 'payment.posted']);
    expect(new Set(posted.pendingEvents?.map((e) => e.id)).size).toBe(3);
  });
});
