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
    requireConfig(config, ['CAMBIO_TOKEN_URL', 'CAMBIO_CLIENT_ID', 'CAMBIO_CLIENT_SECRET', 'CAMBIO_SUBSCRIPTION_KEY'] as const, 'Cambio');
    client = new CambioClient(
      {
        baseUrl: config.CAMBIO_BASE_URL,
        tokenUrl: config.CAMBIO_TOKEN_URL as string,
        clientId: config.CAMBIO_CLIENT_ID as string,
        clientSecret: config.CAMBIO_CLIENT_SECRET as string,
        subscriptionKey: config.CAMBIO_SUBSCRIPTION_KEY as string,
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
    maxPerSecond: config.CAMBIO_MAX_RPS,
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
    async post(request) {
      return getClient().postPaymentNotice(request as unknown as CambioRequest);
    },
    publicRequest(request) {
      const { patient, ...rest } = request as unknown as CambioRequest;
      // The patient header identifies a person beyond the contact: say that it was given, not what it was.
      return { ...rest, ...(patient ? { patient: 'provided (not shown)' } : {}) };
    },
  };
}
