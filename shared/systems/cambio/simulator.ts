import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  answerFaultsRequest,
  answerLimiterRequest,
  apimRateLimited,
  apimRateLimitHeaders,
  FaultPlan,
  listenLoopback,
  readBody,
  SandboxRateLimit,
  sendJson,
  type LimiterKind,
  type LimiterSettings,
  type RunningServer,
} from '../sandbox.js';
import { paymentNoticeSchema } from './schema.js';

export const SANDBOX_TOKEN_PATH = '/auth/realms/COS/protocol/openid-connect/token';

export interface CambioSandboxOptions {
  port?: number;
  clientId?: string;
  clientSecret?: string;
  subscriptionKey?: string;
  /** Payment notices per second before 429 "Try again in N seconds". */
  ratePerSecond?: number;
  /** How calls past the rate are refused; `rolling` is what Cambio's API Management gateway does. */
  limiter?: LimiterKind;
  /** The rate limit's clock (epoch ms): tests freeze it to place calls exactly inside or outside a window. */
  rateClock?: () => number;
  /** Send the remaining-calls/total-calls headers a gateway configured to send them would (off, as by default). */
  rateLimitHeaders?: boolean;
  tokenTtlSeconds?: number;
  /** Client ids whose tokens lack the payment scope: their posts get 403 "Insufficient scope." */
  clientsWithoutScope?: string[];
  faults?: FaultPlan;
  /** How long a `hang-after` fault holds the connection before closing it. */
  hangMs?: number;
  /** The wait a `429` fault states ("Try again in N seconds"). */
  faultWaitSeconds?: number;
}

export interface CambioSandboxStats {
  tokenRequests: number;
  /** Every request that reached the payment notice route. */
  noticeRequests: number;
  rateLimited: number;
  /** The most payment notices the limiter accepted in any rolling 1,000 ms. */
  maxInAnyWindow: number;
  /** contactId → how many times a PAID was applied. More than 1 is a duplicate post. */
  applied: Record<string, number>;
  byStatus: Record<string, number>;
  /** Epoch ms of the last applied payment. */
  lastAppliedAt: number;
  /** `hang-after` connections the client closed before the sandbox would have (its deadline cut them). */
  hangsCutByClient: number;
}

/**
 * A sandbox of Cambio's token endpoint (Keycloak realm COS) and "Registrera betalning", with the
 * document's answers: 200 `[{ResultCode, Comment}]`, 401 invalid token, 403 insufficient scope, 429
 * "Try again in N seconds". contactIds starting `ERROR` get ResultCode ERROR, `INFO` get INFO.
 */
export class CambioSandbox {
  readonly faults: FaultPlan;
  readonly options: Required<Omit<CambioSandboxOptions, 'faults' | 'port'>>;
  private readonly tokens = new Map<string, { clientId: string; expiresAt: number }>();
  private readonly rate: SandboxRateLimit;
  private server: RunningServer | undefined;
  stats: CambioSandboxStats = CambioSandbox.emptyStats();

  constructor(opts: CambioSandboxOptions = {}) {
    this.options = {
      clientId: opts.clientId ?? 'paybridge-sandbox',
      clientSecret: opts.clientSecret ?? 'sandbox-secret',
      subscriptionKey: opts.subscriptionKey ?? 'sandbox-subscription-key',
      ratePerSecond: opts.ratePerSecond ?? 10,
      limiter: opts.limiter ?? 'rolling',
      rateClock: opts.rateClock ?? Date.now,
      rateLimitHeaders: opts.rateLimitHeaders ?? false,
      tokenTtlSeconds: opts.tokenTtlSeconds ?? 300,
      clientsWithoutScope: opts.clientsWithoutScope ?? [],
      hangMs: opts.hangMs ?? 20_000,
      faultWaitSeconds: opts.faultWaitSeconds ?? 5,
    };
    this.faults = opts.faults ?? new FaultPlan();
    this.rate = new SandboxRateLimit(this.options.limiter, this.options.ratePerSecond, this.options.rateClock);
  }

  static emptyStats(): CambioSandboxStats {
    // `applied` is keyed by the caller's contactId: without a prototype, "__proto__" or "constructor" is counted like any other (issue 20, item 9).
    return { tokenRequests: 0, noticeRequests: 0, rateLimited: 0, maxInAnyWindow: 0, applied: Object.create(null) as Record<string, number>, byStatus: {}, lastAppliedAt: 0, hangsCutByClient: 0 };
  }

  get url(): string {
    if (!this.server) throw new Error('Cambio sandbox is not started');
    return this.server.url;
  }

  get tokenUrl(): string {
    return `${this.url}${SANDBOX_TOKEN_PATH}`;
  }

  async start(port = 0): Promise<this> {
    this.server = await listenLoopback((req, res) => {
      this.route(req, res).catch((err: Error) => {
        if (!res.headersSent) sendJson(res, 500, { statusCode: 500, message: err.message });
      });
    }, port);
    return this;
  }

  async close(): Promise<void> {
    await this.server?.close();
    this.server = undefined;
  }

  setRate(perSecond: number): void {
    this.setLimiter(this.options.limiter, perSecond);
  }

  /** Hears the time of every call its rate limit lets through (see SandboxRateLimit.onAccept). */
  onAccepted(listener: (at: number) => void): void {
    this.rate.onAccept(listener);
  }

  /** Switches the limiter (and rate) at run time; throws LimiterSettingsError for impossible settings. */
  setLimiter(kind: LimiterKind, ratePerSecond = this.options.ratePerSecond): LimiterSettings {
    const settings = this.rate.set(kind, ratePerSecond);
    this.options.limiter = settings.kind;
    this.options.ratePerSecond = settings.ratePerSecond;
    return settings;
  }

  /** Expires every issued token: the next post gets 401 and must refresh. */
  revokeTokens(): void {
    this.tokens.clear();
  }

  private count(status: number): void {
    this.stats.byStatus[status] = (this.stats.byStatus[status] ?? 0) + 1;
  }

  private reply(res: ServerResponse, status: number, body: unknown, headers?: Record<string, string>): void {
    this.count(status);
    sendJson(res, status, body, headers);
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sandbox');
    const body = await readBody(req);
    if (url.pathname === SANDBOX_TOKEN_PATH && req.method === 'POST') return this.token(body, res);
    if (url.pathname === '/patients/paymentnotice/' && req.method === 'POST') return this.paymentNotice(req, body, res);
    if (url.pathname === '/__sandbox/stats' && req.method === 'GET') return sendJson(res, 200, { ...this.stats, limiter: this.rate.settings });
    if (url.pathname === '/__sandbox/limiter' && req.method === 'POST') return answerLimiterRequest(body, res, this.rate.settings, (kind, rps) => this.setLimiter(kind, rps));
    if (url.pathname === '/__sandbox/faults' && req.method === 'POST') return answerFaultsRequest(body, res, this.faults);
    if (url.pathname === '/__sandbox/reset' && req.method === 'POST') {
      this.stats = CambioSandbox.emptyStats();
      this.rate.resetPeak();
      this.faults.clear();
      return sendJson(res, 204, {});
    }
    return this.reply(res, 404, { statusCode: 404, message: 'Resource not found' });
  }

  private token(body: string, res: ServerResponse): void {
    this.stats.tokenRequests++;
    const form = new URLSearchParams(body);
    if (form.get('grant_type') !== 'client_credentials') {
      return this.reply(res, 400, { error: 'unsupported_grant_type', error_description: 'Only client_credentials is enabled for this client' });
    }
    if (form.get('client_id') !== this.options.clientId || form.get('client_secret') !== this.options.clientSecret) {
      return this.reply(res, 401, { error: 'invalid_client', error_description: 'Invalid client credentials' });
    }
    const token = randomBytes(18).toString('base64url');
    this.tokens.set(token, { clientId: form.get('client_id') as string, expiresAt: Date.now() + this.options.tokenTtlSeconds * 1000 });
    return this.reply(res, 200, { access_token: token, expires_in: this.options.tokenTtlSeconds, token_type: 'Bearer', scope: 'paymentnotice' });
  }

  private async paymentNotice(req: IncomingMessage, body: string, res: ServerResponse): Promise<void> {
    this.stats.noticeRequests++;
    const fault = this.faults.next();
    if (fault === 'reset-before') return void req.socket.destroy();
    if (req.headers['ocp-apim-subscription-key'] !== this.options.subscriptionKey) {
      return this.reply(res, 401, { statusCode: 401, message: 'Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription.' });
    }
    const token = /^Bearer (.+)$/.exec(String(req.headers.authorization ?? ''))?.[1];
    const grant = token ? this.tokens.get(token) : undefined;
    if (fault === '401' || !grant || grant.expiresAt < Date.now()) return this.reply(res, 401, { statusCode: 401, message: 'Invalid access token.' });
    if (fault === '403' || this.options.clientsWithoutScope.includes(grant.clientId)) {
      return this.reply(res, 403, { statusCode: 403, message: 'Insufficient scope.' });
    }
    const slot = fault === '429' ? { ok: false as const, waitMs: this.options.faultWaitSeconds * 1000 } : this.rate.take();
    if (this.options.rateLimitHeaders) {
      for (const [name, value] of Object.entries(apimRateLimitHeaders(slot.ok ? slot.remaining : 0, this.rate.calls))) res.setHeader(name, value);
    }
    if (!slot.ok) {
      this.stats.rateLimited++;
      const refused = apimRateLimited(slot.waitMs);
      return this.reply(res, 429, refused.body, refused.headers);
    }
    this.stats.maxInAnyWindow = this.rate.maxInAnyWindow;
    if (fault === '503') return this.reply(res, 503, { statusCode: 503, message: 'Service Unavailable' });
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      return this.reply(res, 400, { statusCode: 400, message: 'Malformed JSON' });
    }
    const notice = paymentNoticeSchema.safeParse(parsed);
    if (!notice.success) return this.reply(res, 400, { statusCode: 400, message: notice.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') });
    const { contactId } = notice.data;
    if (contactId.startsWith('ERROR')) return this.reply(res, 200, [{ ResultCode: 'ERROR', Comment: 'Kontakten hittades inte', Any: [] }]);
    // From here the payment is applied: faults below are the ambiguous kind (done, but the caller cannot tell).
    this.stats.applied[contactId] = (this.stats.applied[contactId] ?? 0) + 1;
    this.stats.lastAppliedAt = Date.now();
    if (fault === '500' || fault === '502' || fault === '504') return this.reply(res, Number(fault), { statusCode: Number(fault), message: 'Upstream error' });
    if (fault === 'reset-after') return void req.socket.destroy();
    if (fault === 'hang-after') {
      let ended = false;
      const timer = setTimeout(() => {
        ended = true;
        req.socket.destroy();
      }, this.options.hangMs).unref();
      req.socket.once('close', () => {
        // Closed before the hang ended: the client gave up (its deadline), not the sandbox.
        if (!ended) this.stats.hangsCutByClient++;
        clearTimeout(timer);
      });
      return;
    }
    if (contactId.startsWith('INFO')) return this.reply(res, 200, [{ ResultCode: 'INFO', Comment: 'Betalning var redan registrerad', Any: [] }]);
    return this.reply(res, 200, [{ ResultCode: 'OK', Comment: 'Betalning registrerad', Any: [] }]);
  }
}
