import type { Dispatcher } from 'undici';
import type { Outcome } from '../../core/types.js';
import { observe, sendWithBearer, TokenCache, tokenRequest } from '../http.js';
import { classifyKontantanalys } from './errors.js';

export interface Remote {
  id: number;
  type: string;
  attributes: Record<string, unknown>;
}

export type Answer<T> = { ok: true; value: T } | { ok: false; outcome: Outcome; status?: number };

/** PiPoS ServiceApi: `POST /Token` (password grant), `{data: {type, id, attributes}}` everywhere. */
export class KontantanalysClient {
  private readonly tokens: TokenCache;

  constructor(
    private readonly settings: { baseUrl: string; username: string; password: string },
    private readonly dispatcher: Dispatcher,
    private readonly clock: () => number,
    tokens?: TokenCache,
    private readonly signal?: AbortSignal,
  ) {
    this.tokens =
      tokens ??
      new TokenCache(
        tokenRequest(dispatcher, this.url('Token'), { grant_type: 'password', username: settings.username, password: settings.password }),
        clock,
        'Kontantanalys',
      );
  }

  /** The same client (and token cache), every call of which is bound by one attempt's deadline. */
  bound(signal: AbortSignal): KontantanalysClient {
    return new KontantanalysClient(this.settings, this.dispatcher, this.clock, this.tokens, signal);
  }

  /** Makes sure a token is at hand, so the send that follows leaves at once. */
  async prepare(signal: AbortSignal): Promise<Outcome | undefined> {
    const got = await this.tokens.get(signal);
    return 'outcome' in got ? got.outcome : undefined;
  }

  private url(path: string): string {
    return new URL(path, this.settings.baseUrl.endsWith('/') ? this.settings.baseUrl : `${this.settings.baseUrl}/`).toString();
  }

  /** One call with the bearer, renewed once on 401. */
  private async call(method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown): Promise<Answer<unknown>> {
    const sent = await sendWithBearer(
      this.tokens,
      (token) =>
        observe(this.dispatcher, {
          method,
          url: this.url(path),
          headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(body ? { 'content-type': 'application/json' } : {}) },
          ...(body ? { body: JSON.stringify(body) } : {}),
          signal: this.signal,
        }),
      [401],
      this.signal,
    );
    if ('outcome' in sent) return { ok: false, outcome: sent.outcome };
    const { obs } = sent;
    const outcome = classifyKontantanalys(obs, this.clock());
    if (outcome.type !== 'posted') return { ok: false, outcome, ...(obs.kind === 'response' ? { status: obs.status } : {}) };
    return { ok: true, value: obs.kind === 'response' ? obs.body : undefined };
  }

  private static data(value: unknown): Remote | undefined {
    const d = (value as { data?: Remote } | undefined)?.data;
    return d && typeof d.id === 'number' ? d : undefined;
  }

  async create(path: string, type: string, attributes: Record<string, unknown>): Promise<Answer<Remote>> {
    const r = await this.call('POST', `${path}/`, { data: { type, attributes } });
    if (!r.ok) return r;
    const d = KontantanalysClient.data(r.value);
    return d ? { ok: true, value: d } : { ok: false, outcome: { type: 'ambiguous', message: 'Kontantanalys created something but answered without data.id' } };
  }

  async update(path: string, type: string, remoteId: number, attributes: Record<string, unknown>): Promise<Answer<Remote | undefined>> {
    const r = await this.call('PUT', `${path}/${remoteId}`, { data: { type, id: remoteId, attributes } });
    return r.ok ? { ok: true, value: KontantanalysClient.data(r.value) } : r;
  }

  async get(path: string, remoteId: number): Promise<Answer<Remote>> {
    const r = await this.call('GET', `${path}/${remoteId}`);
    if (!r.ok) return r;
    const d = KontantanalysClient.data(r.value);
    return d ? { ok: true, value: d } : { ok: false, outcome: { type: 'retryable', message: 'Kontantanalys answered without data' } };
  }

  async list(path: string): Promise<Answer<Remote[]>> {
    const r = await this.call('GET', `${path}/`);
    if (!r.ok) return r;
    const d = (r.value as { data?: unknown } | undefined)?.data;
    return Array.isArray(d) ? { ok: true, value: d as Remote[] } : { ok: false, outcome: { type: 'retryable', message: 'Kontantanalys answered the list without a data array' } };
  }
}
