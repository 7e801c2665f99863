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
import { NIF_CODES } from './errors.js';

export type ErrorShape = 'code' | 'errorCode' | 'errors' | 'text';

export interface NifSandboxOptions {
  /** ClubId → token accepted by the first generation. */
  clubTokens?: Record<string, string>;
  /** Clubs that are Corporate Sports clubs: payment types 0 and 2 only. */
  corporateClubs?: string[];
  subscriptionKey?: string;
  clientId?: string;
  clientSecret?: string;
  /** Addpaymentdetail calls per second, both generations together. */
  ratePerSecond?: number;
  /** How calls past the rate are refused; `rolling` is what NIF's API Management gateway does. */
  limiter?: LimiterKind;
  /** The rate limit's clock (epoch ms): tests freeze it to place calls exactly inside or outside a window. */
  rateClock?: () => number;
  /** Send the remaining-calls/total-calls headers a gateway configured to send them would (off, as by default). */
  rateLimitHeaders?: boolean;
  faults?: FaultPlan;
  /** The undocumented error body's shape, so clients can be tested against several. */
  errorShape?: ErrorShape;
  hangMs?: number;
  faultWaitSeconds?: number;
  /** The sandbox's "today" (YYYY-MM-DD) for the second generation's current-year rule. */
  today?: () => string;
}

export interface StoredPayment {
  paymentId: number;
  generation: 1 | 2;
  clubId?: string;
  personId: number;
  orgId: number;
  paidToOrgId: number;
  paymentTypeId: number;
  amount: number;
  paidDate: string;
  periodFrom: string;
  periodTo: string;
  isPaid: boolean;
  externalReference?: string;
}

export interface NifSandboxStats {
  tokenRequests: number;
  /** Requests that reached an Addpaymentdetail route. */
  postRequests: number;
  readRequests: number;
  rateLimited: number;
  /** The most Addpaymentdetail calls the limiter accepted in any rolling 1,000 ms. */
  maxInAnyWindow: number;
  byStatus: Record<string, number>;
}

/** Magic values that make the sandbox answer a documented error code. */
export const NIF_SANDBOX_MAGIC = { unknownPersonId: 1002, noMembershipPersonId: 3001, invalidOrgId: 3008, invalidBranchId: 1006 } as const;

const isDate = (v: unknown): v is string => typeof v === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(v) && !Number.isNaN(Date.parse(`${v}T00:00:00Z`));

/**
 * A sandbox of NIF's first-generation External Membership / Corporate Sports API (per-club tokens,
 * Addpaymentdetail, the read API) and the second-generation payment API (OAuth2 client credentials),
 * answering every documented code, with a rate limit and faults.
 */
export class NifSandbox {
  readonly faults: FaultPlan;
  readonly options: Required<Omit<NifSandboxOptions, 'faults'>>;
  readonly payments: StoredPayment[] = [];
  stats: NifSandboxStats = { tokenRequests: 0, postRequests: 0, readRequests: 0, rateLimited: 0, maxInAnyWindow: 0, byStatus: {} };
  private readonly tokens = new Set<string>();
  private readonly rate: SandboxRateLimit;
  private server: RunningServer | undefined;

  constructor(opts: NifSandboxOptions = {}) {
    this.options = {
      clubTokens: opts.clubTokens ?? { '4568': 'sandbox-club-token-4568', '16235': 'sandbox-club-token-16235' },
      corporateClubs: opts.corporateClubs ?? ['16235'],
      subscriptionKey: opts.subscriptionKey ?? 'sandbox-nif-subscription-key',
      clientId: opts.clientId ?? 'paybridge-sandbox',
      clientSecret: opts.clientSecret ?? 'sandbox-nif-secret',
      ratePerSecond: opts.ratePerSecond ?? 10,
      limiter: opts.limiter ?? 'rolling',
      rateClock: opts.rateClock ?? Date.now,
      rateLimitHeaders: opts.rateLimitHeaders ?? false,
      errorShape: opts.errorShape ?? 'code',
      hangMs: opts.hangMs ?? 20_000,
      faultWaitSeconds: opts.faultWaitSeconds ?? 5,
      today: opts.today ?? (() => new Date().toISOString().slice(0, 10)),
    };
    this.faults = opts.faults ?? new FaultPlan();
    this.rate = new SandboxRateLimit(this.options.limiter, this.options.ratePerSecond, this.options.rateClock);
  }

  get url(): string {
    if (!this.server) throw new Error('NIF sandbox is not started');
    return this.server.url;
  }

  get tokenUrl(): string {
    return `${this.url}/connect/token`;
  }

  async start(port = 0): Promise<this> {
    this.server = await listenLoopback((req, res) => {
      this.route(req, res).catch((err: Error) => {
        if (!res.headersSent) sendJson(res, 500, { message: err.message });
      });
    }, port);
    return this;
  }

  async close(): Promise<void> {
    await this.server?.close();
    this.server = undefined;
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

  /** How many payment rows carry this externalReference: more than 1 is a double payment. */
  count(externalReference: string): number {
    return this.payments.filter((p) => p.externalReference === externalReference).length;
  }

  private reply(res: ServerResponse, status: number, body: unknown, headers?: Record<string, string>): void {
    this.stats.byStatus[status] = (this.stats.byStatus[status] ?? 0) + 1;
    sendJson(res, status, body, headers);
  }

  private error(res: ServerResponse, code: string): void {
    const message = NIF_CODES[code] ?? 'error';
    this.stats.byStatus[400] = (this.stats.byStatus[400] ?? 0) + 1;
    switch (this.options.errorShape) {
      case 'errorCode':
        return sendJson(res, 400, { errorCode: Number(code), errorMessage: message });
      case 'errors':
        return sendJson(res, 400, { errors: [{ code, message }] });
      case 'text':
        res.writeHead(400, { 'content-type': 'text/plain' });
        return void res.end(`${code}: ${message}`);
      default:
        return sendJson(res, 400, { code: Number(code), message });
    }
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sandbox');
    const body = await readBody(req);
    if (url.pathname === '/connect/token' && req.method === 'POST') return this.token(body, res);
    if (/^\/api\/v\d+\/membership\/Addpaymentdetail$/i.test(url.pathname) && req.method === 'POST') return this.add(req, body, res, 1);
    if (/^\/api\/v1\/payment\/Addpaymentdetail$/i.test(url.pathname) && req.method === 'POST') return this.add(req, body, res, 2);
    if (url.pathname === '/read/api/Payment/paymentdetails' && req.method === 'GET') return this.read(req, url, res);
    if (url.pathname === '/__sandbox/stats' && req.method === 'GET') return sendJson(res, 200, { ...this.stats, payments: this.payments.length, limiter: this.rate.settings });
    if (url.pathname === '/__sandbox/limiter' && req.method === 'POST') return answerLimiterRequest(body, res, this.rate.settings, (kind, rps) => this.setLimiter(kind, rps));
    if (url.pathname === '/__sandbox/faults' && req.method === 'POST') return answerFaultsRequest(body, res, this.faults);
    if (url.pathname === '/__sandbox/payments' && req.method === 'GET') return this.lookup(url, res);
    return this.reply(res, 404, { message: 'Resource not found' });
  }

  private token(body: string, res: ServerResponse): void {
    this.stats.tokenRequests++;
    const form = new URLSearchParams(body);
    if (form.get('grant_type') !== 'client_credentials') return this.reply(res, 400, { error: 'unsupported_grant_type' });
    if (form.get('client_id') !== this.options.clientId || form.get('client_secret') !== this.options.clientSecret) return this.reply(res, 400, { error: 'invalid_client' });
    const token = randomBytes(18).toString('base64url');
    this.tokens.add(token);
    return this.reply(res, 200, { access_token: token, expires_in: 3600, token_type: 'Bearer', scope: 'payment' });
  }

  /** The first generation's checks: subscription key, then the club's token. */
  private clubAuth(req: IncomingMessage): { ok: true; clubId: string } | { ok: false; status: number; message: string } {
    if (req.headers['ocp-apim-subscription-key'] !== this.options.subscriptionKey) return { ok: false, status: 401, message: 'Access denied due to invalid subscription key.' };
    const clubId = String(req.headers.clubid ?? '');
    const expected = Object.hasOwn(this.options.clubTokens, clubId) ? this.options.clubTokens[clubId] : undefined;
    if (!expected || req.headers.authorization !== expected) return { ok: false, status: 401, message: 'Invalid or expired token for club.' };
    return { ok: true, clubId };
  }

  private add(req: IncomingMessage, body: string, res: ServerResponse, generation: 1 | 2): void {
    this.stats.postRequests++;
    const fault = this.faults.next();
    if (fault === 'reset-before') return void req.socket.destroy();
    let clubId: string | undefined;
    if (generation === 1) {
      const auth = this.clubAuth(req);
      if (!auth.ok) return this.reply(res, auth.status, { statusCode: auth.status, message: auth.message });
      clubId = auth.clubId;
    } else {
      const token = /^Bearer (.+)$/.exec(String(req.headers.authorization ?? ''))?.[1];
      if (!token || !this.tokens.has(token)) return this.reply(res, 401, { statusCode: 401, message: 'Unauthorized' });
    }
    if (fault === '401' || fault === '403') return this.reply(res, Number(fault), { statusCode: Number(fault), message: 'Unauthorized' });
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
    if (fault === '503') return this.reply(res, 503, { message: 'Service Unavailable' });
    let p: Record<string, unknown>;
    try {
      p = JSON.parse(body) as Record<string, unknown>;
    } catch {
      return this.reply(res, 400, { message: 'Malformed JSON' });
    }
    const code = this.check(p, generation, clubId);
    if (code) return this.error(res, code);
    const payment: StoredPayment = {
      paymentId: 1_200_000 + this.payments.length + 1,
      generation,
      ...(clubId ? { clubId } : {}),
      personId: Number(p.personId),
      orgId: Number(p.orgId),
      paidToOrgId: Number(p.paidToOrgId),
      paymentTypeId: Number(p.paymentTypeId),
      amount: Number(p.amount),
      paidDate: String(p.paidDate),
      periodFrom: String(p.periodFrom),
      periodTo: String(p.periodTo),
      isPaid: p.isPaid === true,
      ...(p.externalId !== undefined ? { externalReference: String(p.externalId) } : {}),
    };
    // From here the payment exists: faults below are the ambiguous kind.
    this.payments.push(payment);
    if (fault === '500' || fault === '502' || fault === '504') return this.reply(res, Number(fault), { message: 'Internal server error' });
    if (fault === 'reset-after') return void req.socket.destroy();
    if (fault === 'hang-after') {
      setTimeout(() => req.socket.destroy(), this.options.hangMs).unref();
      return;
    }
    return this.reply(res, 200, {
      message: `Payment details added for membership of ${payment.personId} with ${payment.orgId} for period ${payment.periodFrom} to ${payment.periodTo}.`,
      updatedPersonId: payment.personId,
      paymentTypeId: payment.paymentTypeId,
      paymentId: payment.paymentId,
      paymentCategory: p.paymentCategory,
    });
  }

  /** NIF's own checks, in the documents' terms, returning the code to answer with. */
  private check(p: Record<string, unknown>, generation: 1 | 2, clubId: string | undefined): string | undefined {
    const type = Number(p.paymentTypeId);
    const allowed = generation === 2 || (clubId && this.options.corporateClubs.includes(clubId)) ? [0, 2] : [0, 1, 2, 3, 4];
    if (!allowed.includes(type)) return '3009';
    if (!isDate(p.paidDate)) return '3007';
    if (!isDate(p.periodFrom) || !isDate(p.periodTo)) return '3006';
    if (p.periodFrom.slice(0, 4) !== p.periodTo.slice(0, 4)) return '3000';
    if (p.periodTo <= p.periodFrom) return '3006';
    if (generation === 2 && p.periodFrom.slice(0, 4) !== this.options.today().slice(0, 4)) return '3010';
    if (Number(p.personId) === NIF_SANDBOX_MAGIC.unknownPersonId) return '1002';
    if (Number(p.orgId) === NIF_SANDBOX_MAGIC.invalidOrgId) return '3008';
    if (type === 2 && Number(p.orgId) === NIF_SANDBOX_MAGIC.invalidBranchId) return '1006';
    if (Number(p.personId) === NIF_SANDBOX_MAGIC.noMembershipPersonId) return '3001';
    return undefined;
  }

  /**
   * `GET /__sandbox/payments?externalId=X`: the rows stored under an ExternalId, as someone with access
   * to NIF would look a payment up before resolving an unknown one (the second generation has no read
   * API paybridge could ask). Ids and amounts only: no person.
   */
  private lookup(url: URL, res: ServerResponse): void {
    const externalId = url.searchParams.get('externalId');
    if (!externalId) return sendJson(res, 400, { message: 'give ?externalId=...' });
    const rows = this.payments
      .filter((p) => p.externalReference === externalId)
      .map((p) => ({ paymentId: p.paymentId, generation: p.generation, clubId: p.clubId ?? null, orgId: p.orgId, amount: p.amount, paidDate: p.paidDate, externalReference: p.externalReference }));
    return sendJson(res, 200, { externalId, found: rows.length, payments: rows });
  }

  private read(req: IncomingMessage, url: URL, res: ServerResponse): void {
    this.stats.readRequests++;
    const auth = this.clubAuth(req);
    if (!auth.ok) return this.reply(res, auth.status, { statusCode: auth.status, message: auth.message });
    const personId = Number(url.searchParams.get('PersonId'));
    const from = url.searchParams.get('FromDate') ?? '0000-00-00';
    const to = url.searchParams.get('ToDate') ?? '9999-99-99';
    // The query names a person, not a club: the sandbox answers with the person's payments of every
    // club (the stricter reading of an undocumented API), each with the club fields it was posted with,
    // so reconciliation has to tell its own club's row from another club's with the same reference.
    const found = this.payments
      .filter((p) => p.generation === 1 && p.personId === personId && p.paidDate >= from && p.paidDate <= to)
      .map((p) => ({
        paymentId: p.paymentId, personId: p.personId, clubId: p.clubId ?? null, orgId: p.orgId, paidToOrgId: p.paidToOrgId, amount: p.amount,
        paidDate: p.paidDate, periodFrom: p.periodFrom, periodTo: p.periodTo, paymentTypeId: p.paymentTypeId, externalReference: p.externalReference ?? null,
      }));
    return this.reply(res, 200, found);
  }
}
