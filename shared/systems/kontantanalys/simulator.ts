import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { stockholmDate } from '../../dates.js';
import {
  answerFaultsRequest,
  answerLimiterRequest,
  FaultPlan,
  listenLoopback,
  readBody,
  retryAfterSeconds,
  SandboxRateLimit,
  sendJson,
  type LimiterKind,
  type LimiterSettings,
  type RunningServer,
} from '../sandbox.js';

export interface KontantanalysSandboxOptions {
  username?: string;
  password?: string;
  /** How many providers are registered before paybridge starts (the real register holds ~17,000). */
  seededProviders?: number;
  /** API calls per second (the token endpoint is not limited). */
  ratePerSecond?: number;
  /** How calls past the rate are refused (default `rolling`, the strict one). */
  limiter?: LimiterKind;
  /** The rate limit's clock (epoch ms): tests freeze it to place calls exactly inside or outside a window. */
  rateClock?: () => number;
  faults?: FaultPlan;
  faultWaitSeconds?: number;
  hangMs?: number;
  /** Objects per list page when the request names no `page[size]`. */
  pageSize?: number;
  /** The sandbox's "today" (YYYY-MM-DD, Stockholm) for the timelinessDate rule. */
  today?: () => string;
}

interface Stored {
  id: number;
  type: string;
  attributes: Record<string, unknown>;
}

/** Objects per list page unless `page[size]` says otherwise, and the most a page may hold. */
export const DEFAULT_PAGE_SIZE = 500;
export const MAX_PAGE_SIZE = 1_000;

/** An id the sandbox treats as not registered (principal, organisation or provider). */
export const UNKNOWN_ID = 999_999;

const PATHS: Record<string, string> = { providers: 'provider', services: 'service', templates: 'template', adaptations: 'adaptation', feemodels: 'feeModel' };

/** The document's own example provider: matching must find it rather than create it again. */
export const SEED_EXAMPLE_PROVIDER = { name: 'INGO Örebro, Adolfsbergsvägen', visitingAddress: 'Adolfsbergsvägen 4', postalCode: '702 27', postTown: 'ÖREBRO', x: 509886.4, y: 6568855.5 };

/**
 * A sandbox of Tillväxtverket's PiPoS ServiceApi (seed 001): `POST /Token` with the password grant,
 * the five resources in the `{data: {type, id, attributes}}` envelope, `{errors: [...]}`, a seeded
 * register of providers, a rate limit, faults, and the test instance's nightly reset.
 */
export class KontantanalysSandbox {
  readonly faults: FaultPlan;
  readonly options: Required<Omit<KontantanalysSandboxOptions, 'faults'>>;
  readonly objects = new Map<string, Map<number, Stored>>();
  /** `maxInAnyWindow`: the most calls the limiter accepted in any rolling 1,000 ms. */
  stats = { tokenRequests: 0, requests: 0, creates: {} as Record<string, number>, updates: 0, rateLimited: 0, maxInAnyWindow: 0 };
  private readonly tokens = new Set<string>();
  private nextId = 1;
  private readonly rate: SandboxRateLimit;
  private server: RunningServer | undefined;

  constructor(opts: KontantanalysSandboxOptions = {}) {
    this.options = {
      username: opts.username ?? 'testbanken',
      password: opts.password ?? 'Sommar&sol2020',
      seededProviders: opts.seededProviders ?? 2_000,
      ratePerSecond: opts.ratePerSecond ?? 10,
      limiter: opts.limiter ?? 'rolling',
      rateClock: opts.rateClock ?? Date.now,
      faultWaitSeconds: opts.faultWaitSeconds ?? 5,
      hangMs: opts.hangMs ?? 20_000,
      pageSize: opts.pageSize ?? DEFAULT_PAGE_SIZE,
      today: opts.today ?? (() => stockholmDate(Date.now())),
    };
    this.faults = opts.faults ?? new FaultPlan();
    this.rate = new SandboxRateLimit(this.options.limiter, this.options.ratePerSecond, this.options.rateClock);
    this.nightlyReset();
  }

  get url(): string {
    if (!this.server) throw new Error('Kontantanalys sandbox is not started');
    return `${this.server.url}/test/`;
  }

  async start(port = 0): Promise<this> {
    this.server = await listenLoopback((req, res) => {
      this.route(req, res).catch((err: Error) => {
        if (!res.headersSent) sendJson(res, 500, { errors: [err.message] });
      });
    }, port);
    return this;
  }

  async close(): Promise<void> {
    await this.server?.close();
    this.server = undefined;
  }

  /** What the test instance does every night: back to the seeded register, everything else gone. */
  nightlyReset(): void {
    this.objects.clear();
    for (const t of Object.values(PATHS)) this.objects.set(t, new Map());
    const providers = this.objects.get('provider') as Map<number, Stored>;
    const add = (attributes: Record<string, unknown>) => {
      const id = this.nextId++;
      providers.set(id, { id, type: 'provider', attributes });
    };
    add({ ...SEED_EXAMPLE_PROVIDER });
    for (let i = 1; i < this.options.seededProviders; i++) {
      // Spread over Sweden's SWEREF 99 TM extent, at least a kilometre apart.
      add({ name: `Ombud ${i}`, visitingAddress: `Storgatan ${i}`, postalCode: '111 22', postTown: 'STOCKHOLM', x: 300_000 + (i % 500) * 1_000, y: 6_200_000 + Math.floor(i / 500) * 1_000 });
    }
  }

  /** Switches the limiter (and rate) at run time; throws LimiterSettingsError for impossible settings. */
  setLimiter(kind: LimiterKind, ratePerSecond = this.options.ratePerSecond): LimiterSettings {
    const settings = this.rate.set(kind, ratePerSecond);
    this.options.limiter = settings.kind;
    this.options.ratePerSecond = settings.ratePerSecond;
    return settings;
  }

  /** Invalidates every issued token, as an expiry would. */
  revokeTokens(): void {
    this.tokens.clear();
  }

  count(type: string): number {
    return this.objects.get(type)?.size ?? 0;
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sandbox');
    const body = await readBody(req);
    const path = url.pathname.replace(/^\/test/, '').replace(/\/$/, '');
    if (path === '/Token' && req.method === 'POST') return this.token(body, res);
    if (path === '/__sandbox/reset' && req.method === 'POST') {
      this.nightlyReset();
      return sendJson(res, 204, {});
    }
    if (path === '/__sandbox/stats' && req.method === 'GET') return sendJson(res, 200, { ...this.stats, limiter: this.rate.settings });
    if (path === '/__sandbox/limiter' && req.method === 'POST') return answerLimiterRequest(body, res, this.rate.settings, (kind, rps) => this.setLimiter(kind, rps));
    if (path === '/__sandbox/faults' && req.method === 'POST') return answerFaultsRequest(body, res, this.faults);
    const m = /^\/api\/(\w+)(?:\/(\d+))?$/i.exec(path);
    const type = m?.[1] && Object.hasOwn(PATHS, m[1].toLowerCase()) ? PATHS[m[1].toLowerCase()] : undefined;
    if (!m || !type) return sendJson(res, 404, { errors: [`No resource at ${url.pathname}`] });
    this.stats.requests++;
    const token = /^Bearer (.+)$/i.exec(String(req.headers.authorization ?? ''))?.[1];
    if (!token || !this.tokens.has(token)) return sendJson(res, 401, { errors: ['Authorization has been denied for this request.'] });
    const fault = this.faults.next();
    if (fault === 'reset-before') return void req.socket.destroy();
    if (fault === '401') return sendJson(res, 401, { errors: ['Authorization has been denied for this request.'] });
    const slot = fault === '429' ? { ok: false as const, waitMs: this.options.faultWaitSeconds * 1000 } : this.rate.take();
    if (!slot.ok) {
      this.stats.rateLimited++;
      return sendJson(res, 429, { errors: ['Too many requests'] }, { 'retry-after': String(retryAfterSeconds(slot.waitMs)) });
    }
    this.stats.maxInAnyWindow = this.rate.maxInAnyWindow;
    if (fault === '503') return sendJson(res, 503, { errors: ['Service unavailable'] });
    const store = this.objects.get(type) as Map<number, Stored>;
    const id = m[2] ? Number(m[2]) : undefined;
    const after = (ok: () => void) => {
      if (fault === '500' || fault === '502' || fault === '504') return sendJson(res, Number(fault), { errors: ['An error has occurred.'] });
      if (fault === 'reset-after') return void req.socket.destroy();
      if (fault === 'hang-after') return void setTimeout(() => req.socket.destroy(), this.options.hangMs).unref();
      return ok();
    };

    if (req.method === 'GET' && id === undefined) return this.listPage(store, url, res);
    if (req.method === 'GET') {
      const found = store.get(id as number);
      return found ? sendJson(res, 200, { data: found }) : sendJson(res, 404, { errors: [`${type} ${id} not found`] });
    }
    let envelope: { data?: { type?: string; id?: number; attributes?: Record<string, unknown> } };
    try {
      envelope = JSON.parse(body);
    } catch {
      return sendJson(res, 400, { errors: ['The request body is not valid JSON'] });
    }
    const data = envelope.data;
    if (!data || data.type !== type || !data.attributes || typeof data.attributes !== 'object') {
      return sendJson(res, 400, { errors: [`Expected {"data": {"type": "${type}", "attributes": {...}}}`] });
    }
    const invalid = this.validate(type, data.attributes);
    if (invalid.length) return sendJson(res, 400, { errors: invalid });
    if (req.method === 'POST' && id === undefined) {
      const created: Stored = { id: this.nextId++, type, attributes: data.attributes };
      store.set(created.id, created);
      this.stats.creates[type] = (this.stats.creates[type] ?? 0) + 1;
      return after(() => sendJson(res, 201, { data: created }));
    }
    if (req.method === 'PUT' && id !== undefined) {
      const existing = store.get(id);
      if (!existing) return sendJson(res, 404, { errors: [`${type} ${id} not found`] });
      existing.attributes = data.attributes;
      this.stats.updates++;
      return after(() => sendJson(res, 200, { data: existing }));
    }
    return sendJson(res, 405, { errors: ['Method not allowed'] });
  }

  /**
   * One page of a list. Seed 001 does not say how lists page; the sandbox pages the JSON:API way its
   * envelope suggests (`page[number]`, `page[size]`, `links.next` until the last page, `meta`), so a
   * client that reads only the first page misses most of the ~17,000 registered providers.
   */
  private listPage(store: Map<number, Stored>, url: URL, res: ServerResponse): void {
    const number = url.searchParams.get('page[number]') ?? '1';
    const size = url.searchParams.get('page[size]') ?? String(this.options.pageSize);
    if (!/^[1-9]\d{0,6}$/.test(number) || !/^[1-9]\d{0,6}$/.test(size) || Number(size) > MAX_PAGE_SIZE) {
      return sendJson(res, 400, { errors: [`page[number] ska vara 1 eller mer och page[size] 1 till ${MAX_PAGE_SIZE}`] });
    }
    const [n, s] = [Number(number), Number(size)];
    const all = [...store.values()];
    const pages = Math.max(1, Math.ceil(all.length / s));
    const link = (page: number) => {
      const q = new URLSearchParams({ 'page[number]': String(page), 'page[size]': String(s) });
      return `${this.server?.url ?? ''}${url.pathname}?${q}`;
    };
    return sendJson(res, 200, {
      data: all.slice((n - 1) * s, n * s),
      links: { self: link(n), first: link(1), last: link(pages), ...(n > 1 ? { prev: link(Math.min(n - 1, pages)) } : {}), ...(n < pages ? { next: link(n + 1) } : {}) },
      meta: { totalCount: all.length, pageNumber: n, pageSize: s, totalPages: pages },
    });
  }

  /** A few of the document's rules, checked server-side as the real API would. */
  private validate(type: string, a: Record<string, unknown>): string[] {
    const errors: string[] = [];
    if (type === 'service') {
      // Seed 001: externalId is a key of a service's properties ("Alla | externalId | string"), not an
      // attribute. Refused here, so a client that sends it at the top level cannot pass in tests.
      if ('externalId' in a) errors.push('externalId: är en nyckel i properties, inte ett attribut');
      const props = a.properties as Record<string, unknown> | undefined;
      if (props !== undefined && (typeof props !== 'object' || props === null || Array.isArray(props))) errors.push('properties: ska vara en dictionary');
      else if (props?.externalId !== undefined && typeof props.externalId !== 'string') errors.push('properties.externalId: ska vara en sträng');
      // Seed 001: "För aktuellt år måste datumet ligga inom intervallet xxxx-01-01 till aktuellt datum.
      // För historiskt data ska datumet ligga inom året."
      if (typeof a.timelinessDate === 'string') {
        const today = this.options.today();
        const current = Number(today.slice(0, 4));
        const year = typeof a.year === 'number' && a.year !== 0 ? a.year : current;
        const d = a.timelinessDate;
        if (year === current ? d < `${current}-01-01` || d > today : !d.startsWith(`${year}-`)) {
          errors.push(year === current ? `timelinessDate: för aktuellt år måste datumet ligga inom intervallet ${current}-01-01 till ${today}` : `timelinessDate: för historiskt data ska datumet ligga inom året ${year}`);
        }
      }
    }
    const range = (k: string, lo: number, hi: number) => {
      if (a[k] !== undefined && !(typeof a[k] === 'number' && (a[k] as number) >= lo && (a[k] as number) <= hi)) errors.push(`${k}: giltiga värden är ${lo} till ${hi}`);
    };
    range('openHoursPerWeek', 0, 168);
    range('closedWeeksPerYear', 0, 53);
    range('minPercentageFee', 0, 100);
    range('maxPercentageFee', 0, 100);
    if (a.accessBarrier === true && !a.accessBarrierDescription) errors.push('accessBarrierDescription: ska anges när accessBarrier är sant');
    // References the sandbox knows do not exist, as the real register would answer for an unknown id.
    if (a.servicePrincipalId === UNKNOWN_ID || a.principalOrganisationId === UNKNOWN_ID) errors.push(`Huvudman ${UNKNOWN_ID} finns inte`);
    if (a.providerId === UNKNOWN_ID) errors.push(`Serviceplats ${UNKNOWN_ID} finns inte`);
    return errors;
  }

  private token(body: string, res: ServerResponse): void {
    this.stats.tokenRequests++;
    const form = new URLSearchParams(body);
    if (form.get('grant_type') !== 'password') return sendJson(res, 400, { error: 'unsupported_grant_type' });
    if (form.get('username') !== this.options.username || form.get('password') !== this.options.password) {
      return sendJson(res, 400, { error: 'invalid_grant', error_description: 'The user name or password is incorrect.' });
    }
    const token = randomBytes(18).toString('base64url');
    this.tokens.add(token);
    return sendJson(res, 200, { access_token: token, token_type: 'bearer', expires_in: 1209599 });
  }
}
