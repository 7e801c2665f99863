import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KontantanalysClient, MAX_LIST_PAGES, nextLink, type ListAnswer } from '../../../../shared/systems/kontantanalys/client.js';
import { listenLoopback, sendJson, type RunningServer } from '../../../../shared/systems/sandbox.js';

describe('nextLink: JSON:API links.next', () => {
  it('reads a string or {href}, resolves it against the page, and ends on null or absence', () => {
    expect(nextLink({ links: { next: '/test/api/providers/?page%5Bnumber%5D=2' } }, 'http://h:1/test/api/providers/')).toBe('http://h:1/test/api/providers/?page%5Bnumber%5D=2');
    expect(nextLink({ links: { next: { href: 'http://h:1/p?page=3' } } }, 'http://h:1/p')).toBe('http://h:1/p?page=3');
    expect(nextLink({ links: { next: null } }, 'http://h:1/p')).toBeUndefined();
    expect(nextLink({ data: [] }, 'http://h:1/p')).toBeUndefined();
  });
});

/** The outcome's message of a failed listing, or '' when it did not fail. */
const messageOf = (r: ListAnswer): string => (r.ok ? '' : 'message' in r.outcome ? r.outcome.message : '');

describe('KontantanalysClient.list follows every page, boundedly', () => {
  let server: RunningServer;
  /** What the list route answers: by the `page` query value. */
  let pages: (page: number, base: string) => unknown;
  let listRequests = 0;
  /** A page answered 429 once. */
  let failOnce: number | undefined;
  const dispatcher = new Agent();
  beforeAll(async () => {
    server = await listenLoopback((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname === '/Token') return sendJson(res, 200, { access_token: 't', expires_in: 3600 });
      listRequests++;
      const page = Number(url.searchParams.get('page') ?? '1');
      if (page === failOnce) {
        failOnce = undefined;
        return sendJson(res, 429, { errors: ['Too many requests'] }, { 'retry-after': '1' });
      }
      return sendJson(res, 200, pages(page, server.url));
    });
  });
  afterAll(async () => {
    await server.close();
    await dispatcher.close();
  });
  const client = () => new KontantanalysClient({ baseUrl: server.url, username: 'u', password: 'p' }, dispatcher, Date.now);
  const item = (id: number) => ({ id, type: 'provider', attributes: {} });

  it('collects the data of every page until there is no next link', async () => {
    pages = (p) => ({ data: [item(p * 10), item(p * 10 + 1)], links: p < 3 ? { next: `/api/providers/?page=${p + 1}` } : {} });
    const r = await client().list('api/providers');
    expect(r).toEqual({ ok: true, value: [item(10), item(11), item(20), item(21), item(30), item(31)] });
  });

  it('a page that fails returns a cursor, and the next call resumes there instead of at page 1', async () => {
    pages = (p) => ({ data: [item(p)], links: p < 4 ? { next: `/api/providers/?page=${p + 1}` } : {} });
    failOnce = 3;
    const first = await client().list('api/providers');
    expect(first.ok).toBe(false);
    if (first.ok) return;
    expect(first.outcome.type).toBe('rate_limited');
    expect(first.cursor?.items).toEqual([item(1), item(2)]);
    listRequests = 0;
    // Resumed from the cursor: the failed page is asked again, then only what follows it.
    const resumed = await client().list('api/providers', first.cursor);
    expect(resumed).toEqual({ ok: true, value: [item(1), item(2), item(3), item(4)] });
    expect(listRequests).toBe(2);
  });

  it('a next link back to a page already read, or to another origin, is not followed', async () => {
    pages = () => ({ data: [item(1)], links: { next: '/api/providers/?page=1' } });
    const loop = await client().list('api/providers');
    expect(messageOf(loop)).toMatch(/links back to a page already read/);
    pages = () => ({ data: [item(1)], links: { next: 'http://127.0.0.2:9/api/providers/?page=2' } });
    const away = await client().list('api/providers');
    expect(messageOf(away)).toMatch(/another origin/);
  });

  it(`stops after ${MAX_LIST_PAGES} pages`, async () => {
    pages = (p) => ({ data: [], links: { next: `/api/providers/?page=${p + 1}` } });
    listRequests = 0;
    const endless = await client().list('api/providers');
    expect(messageOf(endless)).toMatch(new RegExp(`did not end within ${MAX_LIST_PAGES} pages`));
    expect(listRequests).toBe(MAX_LIST_PAGES);
  });
});
