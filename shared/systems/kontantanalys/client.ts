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

/** How far a listing got: a failed page (a 429, an outage) is resumed from here instead of page 1. */
export interface ListCursor {
  items: Remote[];
  /** The next page's URL. */
  next: string;
  /** URLs already read: a next link pointing back at one of them would loop. */
  seen: string[];
}

export type ListAnswer = { ok: true; value: Remote[] } | { ok: false; outcome: Outcome; status?: number; cursor?: ListCursor };

/**
 * Pages one listing may take. Seed 001 does not say how lists page; its envelope and errors are
 * JSON:API's (`{data: {type, id, attributes}}`, `{errors: [...]}`), so the client follows JSON:API's
 * `links.next` until there is none. ~17,000 registered providers at 500 a page is 34 pages; a
 * listing that does not end within this many is an error, not an endless loop.
 */
export const MAX_LIST_PAGES = 500;

/** The next page's URL from a JSON:API `links.next` (a string or `{href}`), or undefined on the last page. */
export function nextLink(body: unknown, current: string): string | undefined {
  const links = (body as { links?: unknown } | undefined)?.links;
  if (!links || typeof links !== 'object') return undefined;
  const next = (links as { next?: unknown }).next;
  const href = typeof next === 'string' ? next : next && typeof next === 'object' ? (next as { href?: unknown }).href : undefined;
  return typeof href === 'string' && href !== '' ? new URL(href, current).toString() : undefined;
}

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
  private call(method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown): Promise<Answer<unknown>> {
    return this.send(method, this.url(path), body);
  }

  private async send(method: 'GET' | 'POST' | 'PUT', url: string, body?: unknown): Promise<Answer<unknown>> {
    const sent = await sendWithBearer(
      this.tokens,
      (token) =>
        observe(this.dispatcher, {
          method,
          url,
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

  /**
   * Every object of a resource, following each page's `links.next` (see MAX_LIST_PAGES). A page that
   * fails returns the cursor to resume from, so a rate limit met on page 20 costs page 20 again, not
   * pages 1–20. Next links must stay on the configured host: the bearer token goes with them.
   */
  async list(path: string, resume?: ListCursor): Promise<ListAnswer> {
    const base = new URL(this.url(''));
    const items = [...(resume?.items ?? [])];
    const seen = new Set(resume?.seen ?? []);
    let next: string | undefined = resume?.next ?? this.url(`${path}/`);
    while (next !== undefined) {
      if (seen.size >= MAX_LIST_PAGES) return { ok: false, outcome: { type: 'retryable', message: `Kontantanalys: the list at ${path} did not end within ${MAX_LIST_PAGES} pages` } };
      if (seen.has(next)) return { ok: false, outcome: { type: 'retryable', message: `Kontantanalys: the list at ${path} links back to a page already read (${next})` } };
      if (new URL(next).origin !== base.origin) {
        return { ok: false, outcome: { type: 'retryable', message: `Kontantanalys: the list at ${path} links to another origin (${new URL(next).origin}); not followed with our token` } };
      }
      const r = await this.send('GET', next);
      if (!r.ok) return { ...r, cursor: { items, next, seen: [...seen] } };
      const d = (r.value as { data?: unknown } | undefined)?.data;
      if (!Array.isArray(d)) return { ok: false, outcome: { type: 'retryable', message: 'Kontantanalys answered the list without a data array' } };
      seen.add(next);
      items.push(...(d as Remote[]));
      next = nextLink(r.value, next);
    }
    return { ok: true, value: items };
  }
}
