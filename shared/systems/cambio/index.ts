import type { Dispatcher } from 'undici';
import type { Config } from '../../config.js';
import { fieldErrors, validationProblem } from '../../http/problem.js';
import { requireConfig, type InboundRequest, type SystemModule } from '../types.js';
import { CambioClient } from './client.js';
import { patientHeaderSchema, paymentNoticeSchema, type CambioRequest } from './schema.js';

export const CAMBIO = 'cambio';
/** Cambio has one tenant per deployment: the record key is the contactId alone. */
const TENANT = 'default';

export function cambioModule(config: Config, dispatcher: Dispatcher, clock: () => number): SystemModule {
  let client: CambioClient | undefined;
  const getClient = (): CambioClient => {
    if (client) return client;
    const c = config.system(CAMBIO);
    requireConfig(c, ['CAMBIO_TOKEN_URL', 'CAMBIO_CLIENT_ID', 'CAMBIO_CLIENT_SECRET', 'CAMBIO_SUBSCRIPTION_KEY'] as const, 'Cambio');
    client = new CambioClient(
      {
        baseUrl: c.CAMBIO_BASE_URL,
        tokenUrl: c.CAMBIO_TOKEN_URL as string,
        clientId: c.CAMBIO_CLIENT_ID as string,
        clientSecret: c.CAMBIO_CLIENT_SECRET as string,
        subscriptionKey: c.CAMBIO_SUBSCRIPTION_KEY as string,
      },
      dispatcher,
      clock,
    );
    return client;
  };

  return {
    name: CAMBIO,
    // Setting PAID on a contact is a state change: sending it twice leaves the same state.
    ambiguity: 'resend',
    maxPerSecond: () => config.system(CAMBIO).CAMBIO_MAX_RPS,
    prepare: (signal) => getClient().prepare(signal),
    parse(input: InboundRequest) {
      const body = paymentNoticeSchema.safeParse(input.body);
      const errors = body.success ? [] : fieldErrors(body.error);
      const patientRaw = input.headers.patient;
      let patient: string | undefined;
      if (patientRaw !== undefined) {
        const p = patientHeaderSchema.safeParse(patientRaw);
        if (p.success) patient = p.data;
        else errors.push(...p.error.issues.map((i) => ({ pointer: 'header:patient', detail: i.message })));
      }
      if (!body.success || errors.length > 0) throw validationProblem(errors, 'payment notice');
      const request: CambioRequest = { ...body.data, ...(patient ? { patient } : {}) };
      return { tenant: TENANT, key: body.data.contactId, request: { ...request }, keyPointer: '#/contactId' };
    },
    routeKey(key) {
      return key ? { tenant: TENANT, key } : undefined;
    },
    async post(request, ctx) {
      return getClient().postPaymentNotice(request as unknown as CambioRequest, ctx.signal);
    },
    // The patient header is needed for the post only: once nothing will send the notice again, the record
    // keeps that one was given, not what it was (the record lives RECORD_TTL_DAYS, 400 days by default).
    afterSend(request) {
      const { patient, ...rest } = request as unknown as CambioRequest;
      return patient === undefined ? rest : { ...rest, patientGiven: true };
    },
    publicRequest(request) {
      const { patient, patientGiven, ...rest } = request as unknown as CambioRequest & { patientGiven?: boolean };
      // The patient header identifies a person beyond the contact: say that it was given, not what it was.
      return { ...rest, ...(patient || patientGiven ? { patient: 'provided (not shown)' } : {}) };
    },
    personalValues(request) {
      const { patient } = request as unknown as CambioRequest;
      return patient ? [{ value: patient, shownAs: 'patient (not shown)' }] : [];
    },
  };
}
