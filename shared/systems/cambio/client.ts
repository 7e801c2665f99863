import type { Dispatcher } from 'undici';
import type { Observation } from '../../core/classify.js';
import type { Outcome } from '../../core/types.js';
import { observe, sendWithBearer, TokenCache, tokenRequest } from '../http.js';
import { classifyCambio } from './errors.js';
import type { CambioRequest } from './schema.js';

export interface CambioSettings {
  /** e.g. https://api.openservices.cambio.se */
  baseUrl: string;
  /** Keycloak realm COS: <host>/auth/realms/COS/protocol/openid-connect/token */
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  subscriptionKey: string;
}

/** Relative, so a base URL with an API-management path prefix keeps it. */
export const PAYMENT_NOTICE_PATH = 'patients/paymentnotice/';

/** Cambio Open Services, "Registrera betalning": OAuth2 client credentials + APIM subscription key. */
export class CambioClient {
  private readonly tokens: TokenCache;

  constructor(
    private readonly settings: CambioSettings,
    private readonly dispatcher: Dispatcher,
    private readonly clock: () => number,
  ) {
    this.tokens = new TokenCache(
      tokenRequest(dispatcher, settings.tokenUrl, { grant_type: 'client_credentials', client_id: settings.clientId, client_secret: settings.clientSecret }),
      clock,
      'Cambio',
    );
  }

  /** Makes sure a token is at hand, so the send that follows leaves at once. */
  async prepare(signal: AbortSignal): Promise<Outcome | undefined> {
    const got = await this.tokens.get(signal);
    return 'outcome' in got ? got.outcome : undefined;
  }

  /** Posts one payment notice; on 401/403 fetches a new token and tries exactly once more. */
  async postPaymentNotice(request: CambioRequest, signal?: AbortSignal): Promise<Outcome> {
    const sent = await sendWithBearer(this.tokens, (token) => this.send(request, token, signal), [401, 403], signal);
    return 'outcome' in sent ? sent.outcome : classifyCambio(sent.obs, this.clock());
  }

  private send(request: CambioRequest, token: string, signal?: AbortSignal): Promise<Observation> {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/json',
      authorization: `Bearer ${token}`,
      'ocp-apim-subscription-key': this.settings.subscriptionKey,
    };
    if (request.patient) headers.patient = request.patient;
    const body = { status: request.status, contactId: request.contactId, paymentType: request.paymentType };
    return observe(this.dispatcher, {
      method: 'POST',
      url: new URL(PAYMENT_NOTICE_PATH, withSlash(this.settings.baseUrl)).toString(),
      headers,
      body: JSON.stringify(body),
      signal,
    });
  }
}

function withSlash(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}
