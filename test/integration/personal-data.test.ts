import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliContext } from '../../shared/cli/context.js';
import { runCli, type Io } from '../../shared/cli/main.js';
import { recordPk } from '../../shared/core/types.js';
import type { Stack } from '../../shared/local/stack.js';
import type { SystemModule } from '../../shared/systems/types.js';
import { call, queuedFirst, testStack, waitForStatus } from '../helpers/stack.js';

/** Personal data is used for the post and never shown (issue 12). */
const PATIENT = '191212121212';
const PERSON = '8675682';
const COMMENT = 'Paid by Kari Nordmann in cash';

const membership = (externalId: string) => ({
  amount: '450', comment: COMMENT, externalId, isFamilyMember: 'true', isPaid: 'false', orgId: '7896', paidDate: '2015-05-08',
  paidToOrgId: '4568', paymentCategory: 'Club membership', paymentTypeId: 0, periodFrom: '2015-05-08', periodTo: '2015-06-08', personId: PERSON,
});

/** The person id as a whole number anywhere in a text (not inside a longer one). */
const personInClear = new RegExp(`(?<!\\d)${PERSON}(?!\\d)`);

describe('personal data: used for the post, then dropped or never shown', () => {
  let stack: Stack;
  const patientsPosted: unknown[] = [];

  beforeAll(async () => {
    stack = await testStack({
      cambio: { ratePerSecond: 1000 },
      nif: { ratePerSecond: 1000 },
      // Watches what Cambio's module is asked to send: the patient header must still be there for the post.
      modules: (built) => {
        const cambio = built.get('cambio') as SystemModule;
        return [{ ...cambio, post: (request, ctx) => (patientsPosted.push(request.patient), cambio.post(request, ctx)) }];
      },
    });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it("Cambio's patient header is sent, then gone from the stored record: only that one was given is kept", async () => {
    const r = await call(stack, 'POST', '/v1/cambio/payment-notices', { status: 'PAID', contactId: 'pd-patient', paymentType: 'CARD' }, { patient: PATIENT });
    // Posted in process (201), or queued on a busy machine (202) and posted by the worker: the same record after.
    expect([201, 202], JSON.stringify(r.body)).toContain(r.status);
    await waitForStatus(stack, 'cambio', 'pd-patient', ['posted']);
    expect(patientsPosted).toContain(PATIENT);
    const stored = await stack.deps.store.get(recordPk('cambio', 'default', 'pd-patient'));
    expect(stored?.status).toBe('posted');
    expect(stored?.request).toEqual({ status: 'PAID', contactId: 'pd-patient', paymentType: 'CARD', patientGiven: true });
    // The stored request no longer matches its payload hash: a repost must not claim the original's.
    expect(stored?.requestTrimmed).toBe(true);
    expect(JSON.stringify(stored)).not.toContain(PATIENT);
    expect(r.body.request.patient).toBe('provided (not shown)');
    expect((await call(stack, 'GET', '/v1/payments/cambio/pd-patient')).body.request.patient).toBe('provided (not shown)');
  });

  it('the same delivery again is still a duplicate (the payload hash was taken with the header), and sends nothing', async () => {
    const before = stack.cambio!.stats.noticeRequests;
    const again = await call(stack, 'POST', '/v1/cambio/payment-notices', { status: 'PAID', contactId: 'pd-patient', paymentType: 'CARD' }, { patient: PATIENT });
    expect(again.status).toBe(200);
    expect(stack.cambio!.stats.noticeRequests).toBe(before);
  });

  it('a notice Cambio refused drops the header too; one that is held keeps it for the redrive', async () => {
    const refused = await call(stack, 'POST', '/v1/cambio/payment-notices', { status: 'PAID', contactId: 'ERROR-pd', paymentType: 'CARD' }, { patient: PATIENT });
    // 422 when refused in process; a busy machine queues the attempt (202, `retrying`) and the worker's
    // send meets the same refusal. The header is dropped once the record is failed, either way.
    if (!queuedFirst(refused)) expect(refused.status).toBe(422);
    expect((await waitForStatus(stack, 'cambio', 'ERROR-pd', ['failed'])).error).toMatchObject({ kind: 'rejected', code: 'ERROR' });
    expect(JSON.stringify(await stack.deps.store.get(recordPk('cambio', 'default', 'ERROR-pd')))).not.toContain(PATIENT);
    stack.cambio!.faults.push('403', '403');
    expect((await call(stack, 'POST', '/v1/cambio/payment-notices', { status: 'PAID', contactId: 'pd-held', paymentType: 'CARD' }, { patient: PATIENT })).status).toBe(202);
    await waitForStatus(stack, 'cambio', 'pd-held', ['held']);
    expect((await stack.deps.store.get(recordPk('cambio', 'default', 'pd-held')))?.request.patient).toBe(PATIENT);
    stack.cambio!.faults.clear();
  });

  it("NIF: neither the personId nor the comment is in the reply or the status body, not even in NIF's own answer", async () => {
    const posted = await call(stack, 'POST', '/v1/nif/membership/payments', membership('pd-1'), { ClubId: '4568' });
    // Posted in process (201), or queued on a busy machine (202): NIF's answer is then on the record once posted.
    expect([201, 202], JSON.stringify(posted.body)).toContain(posted.status);
    await waitForStatus(stack, 'nif-membership', '4568:pd-1', ['posted']);
    // NIF's answer names the person (seed 003): the record keeps it, callers see the hash.
    expect(JSON.stringify((await stack.deps.store.get(recordPk('nif-membership', '4568', '4568:pd-1')))?.result)).toMatch(personInClear);
    const status = await call(stack, 'GET', '/v1/payments/nif-membership/4568%3Apd-1');
    expect(status.status).toBe(200);
    // NIF's answer is in the reply when the post was made in process (201), and on the status route's record always.
    const answered = posted.status === 201 ? [posted.body, status.body] : [status.body];
    for (const body of [posted.body, status.body]) {
      const text = JSON.stringify(body);
      expect(text).not.toMatch(personInClear);
      expect(text).not.toContain(COMMENT);
      expect(body.request.personId).toMatch(/^ref:[0-9a-f]{16}$/);
      expect(body.request.comment).toBe('provided (not shown)');
      // Everything that is not personal is still there.
      expect(body.request).toMatchObject({ clubId: '4568', orgId: 7896, paidToOrgId: 4568, amount: 450, paymentCategory: 'Club membership' });
    }
    for (const body of answered) {
      expect(body.result.body.updatedPersonId).toBe(body.request.personId);
      expect(body.result.body.message).toContain(`membership of ${body.request.personId} with 7896`);
      expect(body.result.httpStatus).toBe(200);
    }
  });

  it('paybridge payments show prints nothing of it either', async () => {
    const out: string[] = [];
    const io: Io = { out: (l) => out.push(l), err: (l) => out.push(l), progress: () => undefined, progressEnd: () => undefined, interactive: false, confirm: async () => false, clock: Date.now };
    const ctx = async (): Promise<CliContext> => ({
      where: 'test stack',
      store: stack.deps.store,
      queue: stack.queue,
      fence: () => stack.deps.pacer.mintFence(),
      deadLetters: { count: async () => 0, redrive: async () => 0 },
    });
    expect(await runCli(['payments', 'show', 'nif-membership', '4568:pd-1', '--json'], ctx, io)).toBe(0);
    const shown = JSON.parse(out.join('\n'));
    expect(shown).toMatchObject({ system: 'nif-membership', key: '4568:pd-1', status: 'posted' });
    expect(out.join('\n')).not.toMatch(personInClear);
    expect(out.join('\n')).not.toContain(COMMENT);
    expect(shown.result.body.updatedPersonId).toMatch(/^ref:/);
  });
});
