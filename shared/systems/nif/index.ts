import { createHash } from 'node:crypto';
import type { Dispatcher } from 'undici';
import type { Config } from '../../config.js';
import { osloDate } from '../../dates.js';
import { sharedDispatcher } from '../http.js';
import { validationProblem, type FieldError } from '../../http/problem.js';
import { moduleFactory, requireConfig, type InboundRequest, type ModuleFactory, type SystemModule } from '../types.js';
import { NIF_ENVIRONMENTS, NifMembershipClient, NifPaymentClient } from './client.js';
import { NIF, NIF_CORPORATE, NIF_MEMBERSHIP, nifCorporateDescription, nifDescription, nifMembershipDescription, type NifRequest } from './describe.js';
import { parseNifPayment, type NifPayment, type NifVariant } from './schema.js';

export { NIF, NIF_CORPORATE, NIF_MEMBERSHIP } from './describe.js';

/**
 * A stable ExternalId (≤ 25 characters, seed 003) derived from the idempotency key, sent when the
 * caller gave none: the read API matches on it, so even keyless payments can be reconciled.
 */
export function derivedExternalId(clubId: string, key: string): string {
  return `pb${createHash('sha256').update(`${clubId}:${key}`).digest('base64url').replace(/[-_]/g, '').slice(0, 23)}`;
}

const idempotencyKeyPattern = /^[\x21-\x7e]{1,100}$/;

function firstGeneration(variant: 'membership' | 'corporate', config: Config, dispatcher: Dispatcher, clock: () => number): SystemModule {
  let client: NifMembershipClient | undefined;
  const name = variant === 'membership' ? NIF_MEMBERSHIP : NIF_CORPORATE;
  const getClient = () => {
    if (client) return client;
    const c = config.system(name);
    requireConfig(c, ['NIF_MEMBERSHIP_BASE_URL', 'NIF_SUBSCRIPTION_KEY', 'NIF_CLUB_TOKENS'] as const, 'NIF (first generation)');
    const tokens = c.NIF_CLUB_TOKENS as Record<string, string>;
    client = new NifMembershipClient(
      {
        baseUrl: c.NIF_MEMBERSHIP_BASE_URL as string,
        apiVersion: c.NIF_MEMBERSHIP_API_VERSION,
        subscriptionKey: c.NIF_SUBSCRIPTION_KEY as string,
        clubToken: (clubId) => tokens[clubId],
      },
      dispatcher,
      clock,
    );
    return client;
  };

  return {
    ...(variant === 'membership' ? nifMembershipDescription : nifCorporateDescription)(config),
    // Club tokens come from configuration (nothing to fetch): building the client checks them.
    prepare: async () => {
      getClient();
      return undefined;
    },
    parse(input: InboundRequest) {
      const errors: FieldError[] = [];
      const clubId = input.headers.clubid?.trim();
      if (!clubId) errors.push({ pointer: 'header:ClubId', detail: 'is required: the club the payment is posted for' });
      else if (!/^[1-9]\d{0,11}$/.test(clubId)) errors.push({ pointer: 'header:ClubId', detail: 'must be a positive whole number' });
      const idem = input.headers['idempotency-key'];
      if (idem !== undefined && !idempotencyKeyPattern.test(idem)) {
        errors.push({ pointer: 'header:Idempotency-Key', detail: 'must be 1–100 visible ASCII characters' });
      }
      const parsed = parseNifPayment(input.body, variant, osloDate(clock()));
      if (!parsed.ok) errors.push(...parsed.errors);
      if (errors.length > 0 || !parsed.ok || !clubId) throw validationProblem(errors, 'payment');
      const p = parsed.value;
      // The status route's key is `<ClubId>:<externalId>` (DESIGN.md), with the fallbacks after the colon.
      const own = p.externalId ?? (idem !== undefined ? `idem:${idem}` : `natural:${p.personId}:${p.orgId}:${p.paymentTypeId}:${p.periodFrom}:${p.periodTo}`);
      const key = `${clubId}:${own}`;
      const generated = p.externalId === undefined;
      const payment: NifPayment = generated ? { ...p, externalId: derivedExternalId(clubId, own) } : p;
      const request: NifRequest = { clubId, payment, ...(generated ? { generatedExternalId: true } : {}) };
      const keyPointer = p.externalId !== undefined ? '#/externalId' : idem !== undefined ? 'header:Idempotency-Key' : '#';
      return { tenant: clubId, key, request: request as unknown as Record<string, unknown>, keyPointer };
    },
    async post(request, ctx) {
      const r = request as unknown as NifRequest;
      return getClient().addPaymentDetail(r.clubId as string, r.payment, variant, ctx.signal);
    },
    async reconcile(record, ctx) {
      const r = record.request as unknown as NifRequest;
      return getClient().findPayment(r.clubId as string, r.payment, variant, ctx.signal);
    },
  };
}

function secondGeneration(config: Config, dispatcher: Dispatcher, clock: () => number): SystemModule {
  let client: NifPaymentClient | undefined;
  const getClient = () => {
    if (client) return client;
    const c = config.system(NIF);
    requireConfig(c, ['NIF_CLIENT_ID', 'NIF_CLIENT_SECRET'] as const, 'NIF (second generation)');
    const defaults = NIF_ENVIRONMENTS[c.NIF_ENVIRONMENT];
    client = new NifPaymentClient(
      {
        baseUrl: c.NIF_BASE_URL ?? defaults.baseUrl,
        tokenUrl: c.NIF_TOKEN_URL ?? defaults.tokenUrl,
        clientId: c.NIF_CLIENT_ID as string,
        clientSecret: c.NIF_CLIENT_SECRET as string,
        subscriptionKey: c.NIF_SUBSCRIPTION_KEY,
      },
      dispatcher,
      clock,
    );
    return client;
  };
  return {
    ...nifDescription(config),
    prepare: (signal) => getClient().prepare(signal),
    parse(input: InboundRequest) {
      const parsed = parseNifPayment(input.body, 'gen2' satisfies NifVariant, osloDate(clock()));
      if (!parsed.ok) throw validationProblem(parsed.errors, 'payment');
      const request: NifRequest = { payment: parsed.value };
      return { tenant: 'default', key: parsed.value.externalId as string, request: request as unknown as Record<string, unknown>, keyPointer: '#/externalId' };
    },
    async post(request, ctx) {
      return getClient().addPaymentDetail((request as unknown as NifRequest).payment, ctx.signal);
    },
  };
}

export const nifMembershipModule: ModuleFactory = moduleFactory(NIF_MEMBERSHIP, (config, dispatcher = sharedDispatcher(), clock = Date.now) => firstGeneration('membership', config, dispatcher, clock));
export const nifCorporateModule: ModuleFactory = moduleFactory(NIF_CORPORATE, (config, dispatcher = sharedDispatcher(), clock = Date.now) => firstGeneration('corporate', config, dispatcher, clock));
export const nifModule: ModuleFactory = moduleFactory(NIF, (config, dispatcher = sharedDispatcher(), clock = Date.now) => secondGeneration(config, dispatcher, clock));

/** Every NIF system: both first-generation APIs and the second generation. */
export function nifModules(config: Config, dispatcher: Dispatcher, clock: () => number): SystemModule[] {
  return [nifMembershipModule, nifCorporateModule, nifModule].map((make) => make(config, dispatcher, clock));
}
