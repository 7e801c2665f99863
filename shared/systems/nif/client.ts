import type { Dispatcher } from 'undici';
import type { Observation } from '../../core/classify.js';
import type { Outcome } from '../../core/types.js';
import { observe, sendWithBearer, TokenCache, tokenRequest } from '../http.js';
import type { ReconcileResult } from '../types.js';
import { classifyNif } from './errors.js';
import { toWire, type NifPayment, type NifVariant } from './schema.js';

/** Documented endpoints of the second generation (seed 004) and its identity server. */
export const NIF_ENVIRONMENTS = {
  dst: { baseUrl: 'https://api-dst.nif.no', tokenUrl: 'https://iddst.nif.no/connect/token' },
  prod: { baseUrl: 'https://api.nif.no', tokenUrl: 'https://id.nif.no/connect/token' },
} as const;

/** OrgTypeId for the read API: 5 clubs, 15 Corporate Sports (issue 3). */
export const ORG_TYPE = { membership: 5, corporate: 15 } as const;

const join = (base: string, path: string) => new URL(path, base.endsWith('/') ? base : `${base}/`).toString();

function jsonHeaders(extra: Record<string, string>): Record<string, string> {
  return { 'content-type': 'application/json', accept: 'application/json', ...extra };
}

/**
 * First generation (seed 003): External Membership API and Corporate Sports API. Each club's token
 * comes from NIF's portal and lasts about an hour; it cannot be refreshed from here, so a 401 holds
 * the payment until the secret is renewed.
 */
export class NifMembershipClient {
  constructor(
    private readonly settings: { baseUrl: string; apiVersion: number; subscriptionKey: string; clubToken: (clubId: string) => string | undefined },
    private readonly dispatcher: Dispatcher,
    private readonly clock: () => number,
  ) {}

  private headers(clubId: string, token: string, extra: Record<string, string> = {}) {
    return jsonHeaders({ clubid: clubId, authorization: token, 'ocp-apim-subscription-key': this.settings.subscriptionKey, ...extra });
  }

  async addPaymentDetail(clubId: string, payment: NifPayment, variant: NifVariant, signal?: AbortSignal): Promise<Outcome> {
    const token = this.settings.clubToken(clubId);
    if (!token) {
      return { type: 'auth', message: `no token for ClubId ${clubId} in NIF_CLUB_TOKENS: add the club's token from NIF's portal, then redrive` };
    }
    const obs = await observe(this.dispatcher, {
      method: 'POST',
      url: join(this.settings.baseUrl, `api/v${this.settings.apiVersion}/membership/Addpaymentdetail`),
      headers: this.headers(clubId, token),
      body: JSON.stringify(toWire(payment, variant)),
      signal,
    });
    const outcome = classifyNif(obs, this.clock());
    if (outcome.type === 'auth') {
      return { ...outcome, message: `NIF refused the token of ClubId ${clubId} (${outcome.message}): renew it in NIF_CLUB_TOKENS, then redrive` };
    }
    return outcome;
  }

  /**
   * The read API, `GET /read/api/Payment/paymentdetails?PersonId&FromDate&ToDate`: is there a payment
   * of this club with our externalId as its externalReference? The query names a person, not a
   * club, and an ExternalId is only the caller's "transaction reference number" (seed 003), which two
   * clubs' systems may both use: a row of another club must never count as ours (see sameClub).
   */
  async findPayment(clubId: string, payment: NifPayment, variant: 'membership' | 'corporate', signal?: AbortSignal): Promise<ReconcileResult> {
    const token = this.settings.clubToken(clubId);
    if (!token) return { type: 'inconclusive', message: `no token for ClubId ${clubId}` };
    const from = [payment.paidDate, payment.periodFrom].sort()[0] as string;
    const today = new Date(this.clock()).toISOString().slice(0, 10);
    const to = [payment.paidDate, payment.periodTo, today].sort().at(-1) as string;
    const query = new URLSearchParams({ PersonId: String(payment.personId), FromDate: from, ToDate: to });
    const obs: Observation = await observe(this.dispatcher, {
      method: 'GET',
      url: `${join(this.settings.baseUrl, 'read/api/Payment/paymentdetails')}?${query}`,
      headers: this.headers(clubId, token, { orgtypeid: String(ORG_TYPE[variant]) }),
      signal,
    });
    if (obs.kind === 'error') return { type: 'inconclusive', message: `read API unreachable: ${obs.code}` };
    if (obs.status < 200 || obs.status >= 300) return { type: 'inconclusive', message: `read API answered HTTP ${obs.status}` };
    const list = paymentsIn(obs.body);
    if (!list) return { type: 'inconclusive', message: 'read API answered with no list of payments' };
    const match = list.find((p) => referenceOf(p) === payment.externalId && sameClub(p, clubId, payment));
    return match ? { type: 'found', body: match } : { type: 'absent' };
  }
}

function paymentsIn(body: unknown): Record<string, unknown>[] | undefined {
  if (Array.isArray(body)) return body as Record<string, unknown>[];
  if (body && typeof body === 'object') {
    for (const field of ['payments', 'Payments', 'data', 'Data', 'items', 'Items', 'result', 'Result']) {
      const v = (body as Record<string, unknown>)[field];
      if (Array.isArray(v)) return v as Record<string, unknown>[];
    }
  }
  return undefined;
}

/**
 * Whether a read-API row belongs to the payment we sent for this club. The read API is not in the
 * seed documents, so neither are its fields: every club field the row carries must agree with what
 * was sent (seed 003's request: `OrgId` "Payment type 1 ClubId, Payment type 2 BranchId",
 * `PaidToOrgId` "Organization receiving the payment (club)"; the `ClubId` header). A row carrying
 * none of them was read with this club's ClubId header and token, and is taken as this club's.
 */
export function sameClub(row: Record<string, unknown>, clubId: string, payment: Pick<NifPayment, 'orgId' | 'paidToOrgId'>): boolean {
  const checks: [unknown, number | string][] = [
    [row.paidToOrgId ?? row.PaidToOrgId, payment.paidToOrgId],
    [row.orgId ?? row.OrgId, payment.orgId],
    [row.clubId ?? row.ClubId, clubId],
  ];
  return checks.every(([got, sent]) => got === undefined || got === null || String(got) === String(sent));
}

function referenceOf(p: Record<string, unknown>): string | undefined {
  const v = p.externalReference ?? p.ExternalReference ?? p.externalId ?? p.ExternalId;
  return v === undefined || v === null ? undefined : String(v);
}

/** Second generation (seed 004): OAuth2 client credentials against NIF's identity server. */
export class NifPaymentClient {
  private readonly tokens: TokenCache;

  constructor(
    private readonly settings: { baseUrl: string; tokenUrl: string; clientId: string; clientSecret: string; subscriptionKey?: string | undefined },
    private readonly dispatcher: Dispatcher,
    private readonly clock: () => number,
  ) {
    this.tokens = new TokenCache(
      tokenRequest(dispatcher, settings.tokenUrl, { grant_type: 'client_credentials', client_id: settings.clientId, client_secret: settings.clientSecret }),
      clock,
      'NIF',
    );
  }

  /** Makes sure a token is at hand, so the send that follows leaves at once. */
  async prepare(signal: AbortSignal): Promise<Outcome | undefined> {
    const got = await this.tokens.get(signal);
    return 'outcome' in got ? got.outcome : undefined;
  }

  async addPaymentDetail(payment: NifPayment, signal?: AbortSignal): Promise<Outcome> {
    const sent = await sendWithBearer(
      this.tokens,
      (token) =>
      observe(this.dispatcher, {
        method: 'POST',
        url: join(this.settings.baseUrl, 'api/v1/payment/Addpaymentdetail'),
        headers: jsonHeaders({
          authorization: `Bearer ${token}`,
          ...(this.settings.subscriptionKey ? { 'ocp-apim-subscription-key': this.settings.subscriptionKey } : {}),
        }),
        body: JSON.stringify(toWire(payment, 'gen2')),
        signal,
      }),
      [401, 403],
      signal,
    );
    return 'outcome' in sent ? sent.outcome : classifyNif(sent.obs, this.clock());
  }
}
