import { sharedDispatcher } from '../http.js';
import { fieldErrors, validationProblem } from '../../http/problem.js';
import { moduleFactory, requireConfig, type InboundRequest, type SystemModule } from '../types.js';
import { CambioClient } from './client.js';
import { CAMBIO, CAMBIO_TENANT, cambioDescription } from './describe.js';
import { patientHeaderSchema, paymentNoticeSchema, type CambioRequest } from './schema.js';

export { CAMBIO } from './describe.js';

export const cambioModule = moduleFactory(CAMBIO, (config, dispatcher = sharedDispatcher(), clock = Date.now): SystemModule => {
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
    ...cambioDescription(config),
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
      return { tenant: CAMBIO_TENANT, key: body.data.contactId, request: { ...request }, keyPointer: '#/contactId' };
    },
    async post(request, ctx) {
      return getClient().postPaymentNotice(request as unknown as CambioRequest, ctx.signal);
    },
  };
});
