import { describe, expect, it } from 'vitest';
import { banner } from '../../../shared/local/banner.js';
import { humanConsole, logFormat } from '../../../shared/local/console.js';

/** A console writing into an array, its clock fixed at 12:00:05 local time. */
function made(level?: string) {
  const lines: string[] = [];
  const at = new Date(2026, 10, 30, 12, 0, 5).getTime();
  const c = humanConsole({ write: (l) => lines.push(l), clock: () => at, ...(level ? { level } : {}) });
  return { c, lines };
}

describe('npm start output for people (issue 15)', () => {
  it('LOG_FORMAT picks; otherwise a terminal gets lines for people and a pipe the JSON', () => {
    expect(logFormat(undefined, true)).toBe('human');
    expect(logFormat(undefined, false)).toBe('json');
    expect(logFormat('json', true)).toBe('json');
    expect(logFormat(' Human ', false)).toBe('human');
    expect(() => logFormat('yaml', true)).toThrow(/LOG_FORMAT must be human or json/);
  });

  it('one line per request, with the system, the key hash, what became of the payment and the time taken', () => {
    const { c, lines } = made();
    const intake = c.log.child({ system: 'cambio', ref: '3e7b73c3dd514814', correlationId: 'r1', requestId: 'r1' });
    intake.info('claimed', { plan: 'inline' });
    c.metrics.milliseconds('cambio', 'post_latency', 12);
    intake.info('attempt', { outcome: 'posted', httpStatus: 200, status: 'posted', attempts: 1 });
    c.metrics.count('cambio', 'posted');
    expect(lines).toEqual([]);
    c.log.info('request', { requestId: 'r1', route: 'POST /v1/cambio/payment-notices', status: 201, ms: 33, caller: 'api-key:abc' });
    expect(lines).toEqual(['12:00:05  POST /v1/cambio/payment-notices       201  cambio         #3e7b73c3  posted (HTTP 200)  33 ms']);

    const dup = c.log.child({ system: 'cambio', ref: '3e7b73c3dd514814', correlationId: 'r2', requestId: 'r2' });
    dup.info('duplicate delivery suppressed', { status: 'posted' });
    c.log.info('request', { requestId: 'r2', route: 'POST /v1/cambio/payment-notices', status: 200, ms: 4 });
    expect(lines[1]).toMatch(/ 200 {2}cambio {9}#3e7b73c3 {2}duplicate of a posted payment: nothing sent {2}4 ms$/);

    c.log.info('request', { requestId: 'r3', route: 'GET /v1/payments/{system}/{key}', status: 404, ms: 2 });
    expect(lines[2]).toBe('12:00:05  GET /v1/payments/{system}/{key}       404  2 ms');
  });

  it('a retry worker\'s attempt is a line of its own, with its latency and the key hash intake saw', () => {
    const { c, lines } = made();
    c.log.child({ system: 'nif', ref: 'aaaabbbbccccdddd', correlationId: 'corr-9', requestId: 'r9' }).info('claimed', { plan: 'queued' });
    c.log.info('request', { requestId: 'r9', route: 'POST /v1/nif/payments', status: 202, ms: 5 });
    expect(lines[0]).toMatch(/202 {2}nif {12}#aaaabbbb {2}queued {2}5 ms$/);
    c.metrics.milliseconds('nif', 'post_latency', 41);
    c.log.child({ system: 'nif' }).child({ correlationId: 'corr-9' }).info('attempt', { outcome: 'rate_limited', httpStatus: 429, status: 'retrying', attempts: 1 });
    // In the same columns as a request line: the status column is left blank.
    expect(lines[1]).toBe(`12:00:05  ${'retry nif'.padEnd(36)}  ${' '.repeat(3)}  nif            #aaaabbbb  retrying (rate limited, HTTP 429)  41 ms`);
  });

  it('warnings and errors in a line each, errors by name and message only; debug only when asked', () => {
    const { c, lines } = made();
    c.log.child({ system: 'brp' }).warn('sweep recovered records', { enqueued: 2, stranded: 1 });
    const err = Object.assign(new Error('socket hang up'), { name: 'TimeoutError', item: { personId: 8675682 } });
    c.log.error('sweep failed', { error: err });
    c.log.debug('fence already consumed: message dropped', { messageId: 'm' });
    expect(lines).toEqual(['12:00:05  WARN  brp:  sweep recovered records  enqueued=2 stranded=1', '12:00:05  ERROR  sweep failed  error=TimeoutError: socket hang up']);
    const quiet = made('error');
    quiet.c.log.warn('not shown');
    quiet.c.log.error('shown');
    expect(quiet.lines).toEqual(['12:00:05  ERROR  shown']);
    const chatty = made('debug');
    chatty.c.log.debug('fence already consumed: message dropped', { messageId: 'm' });
    expect(chatty.lines).toEqual(['12:00:05  DEBUG  fence already consumed: message dropped  messageId=m']);
  });

  it('metrics: a summary per interval (nothing when nothing happened) and a total at stop', () => {
    const { c } = made();
    expect(c.summary('last minute')).toBeUndefined();
    c.metrics.count('cambio', 'posted');
    c.metrics.count('cambio', 'posted');
    c.metrics.count('cambio', 'duplicate_suppressed');
    c.metrics.milliseconds('cambio', 'post_latency', 10);
    c.metrics.milliseconds('cambio', 'post_latency', 30);
    c.metrics.count('nif', 'unknown');
    expect(c.summary('last minute')).toBe('12:00:05  last minute: cambio: posted 2, duplicate suppressed 1, sends 2 (avg 20 ms, max 30 ms) | nif: unknown 1');
    expect(c.summary('last minute')).toBeUndefined();
    c.metrics.count('nif', 'held');
    expect(c.total('since start')).toBe('12:00:05  since start: cambio: posted 2, duplicate suppressed 1, sends 2 (avg 20 ms, max 30 ms) | nif: unknown 1, held 1');
  });
});

describe('the start banner', () => {
  const base = {
    url: 'http://127.0.0.1:3000',
    apiKey: 'pb_dev_local_key',
    webhookSecret: 'whsec_abc=',
    webhookSecretFrom: 'dev' as const,
    dataDir: '/repo/.data/dynalite',
    localFile: '/repo/.data/local.json',
    defaultLocalFile: true,
    sandboxes: [
      { name: 'cambio', url: 'http://127.0.0.1:4001', about: 'x' },
      { name: 'nif', url: 'http://127.0.0.1:4002', about: 'y' },
    ],
    routes: [{ method: 'GET', path: '/v1/openapi.json' }],
    format: 'human' as const,
    tryKey: 'try-abc123',
    cwd: '/repo',
  };

  it('shows the webhook secret, every sandbox URL, and examples with this start\'s key and this year', () => {
    const text = banner({ ...base, year: 2031 }).join('\n');
    expect(text).toContain('dev secret whsec_abc= (sender "webhook")');
    expect(text).toMatch(/^ {2}cambio {2}http:\/\/127\.0\.0\.1:4001 {2}x$/m);
    expect(text).toMatch(/^ {2}nif {5}http:\/\/127\.0\.0\.1:4002 {2}y$/m);
    expect(text).toContain('"contactId":"try-abc123"');
    expect(text).toContain('"externalId":"try-abc123"');
    expect(text).toContain('"periodFrom":"2031-05-08"');
    expect(text).not.toMatch(/20(2[0-9]|30)-/);
    expect(text).toContain("npx paybridge sign /v1/cambio/payment-notices '{\"status\":\"PAID\",\"contactId\":\"try-abc123-w\",\"paymentType\":\"CASH\"}' | sh");
    expect(text).toContain('records       dynalite, kept in .data/dynalite');
  });

  it('a stack started beside another names its own local file in every command', () => {
    const text = banner({ ...base, year: 2031, localFile: '/repo/.data/local-3001.json', defaultLocalFile: false }).join('\n');
    expect(text).toContain('PAYBRIDGE_LOCAL_FILE=.data/local-3001.json npx paybridge sign');
    expect(text).toContain('PAYBRIDGE_LOCAL_FILE=.data/local-3001.json npx paybridge --help');
  });
});
