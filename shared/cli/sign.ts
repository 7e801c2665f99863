import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readLocalFile } from './context.js';
import { UsageError } from './io.js';
import type { Run } from './args.js';

/** A word for a POSIX shell: single-quoted, a single quote inside written as '\''. */
export function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

function header(text: string): [string, string] {
  const at = text.indexOf(':');
  const name = text.slice(0, at).trim();
  if (at <= 0 || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) throw new UsageError(`--header must look like "ClubId: 4568", not "${text}"`);
  return [name, text.slice(at + 1).trim()];
}

/** The secret the local stack verifies with: WEBHOOK_SECRET when set (its first, if several), else the dev secret. */
async function localSecret(): Promise<{ secret: string; from: string }> {
  const configured = process.env.WEBHOOK_SECRET?.trim().split(/\s+/)[0];
  if (configured) return { secret: configured, from: 'WEBHOOK_SECRET' };
  // Loaded only here: stack.ts brings the whole local stack with it, which no other command needs.
  const { DEV_WEBHOOK_SECRET } = await import('../local/stack.js');
  return { secret: DEV_WEBHOOK_SECRET, from: 'the dev secret npm start uses when WEBHOOK_SECRET is unset' };
}

/**
 * `paybridge sign ROUTE BODY`: a ready curl that sends BODY to ROUTE on the local stack as a payment
 * terminal would, signed as a Standard Webhook (webhook-id, webhook-timestamp, webhook-signature over
 * the exact body) instead of carrying an x-api-key.
 */
export async function sign(run: Run): Promise<number> {
  const { values, io } = run;
  const [route, bodyArg, ...extra] = run.args;
  if (!route || bodyArg === undefined || extra.length > 0) {
    // The running stack's URL (or PORT's), as the command would use it: not a fixed port 3000.
    throw new UsageError(`usage: paybridge sign ROUTE BODY (BODY may be @file) [--header "ClubId: 4568"] [--method PUT] [--url ${localBase()}]`);
  }
  if (values.stage) throw new UsageError('sign is for the local stack: a deployed stage verifies with its own WEBHOOK_SECRET, which only the terminal provider should hold');
  if (!route.startsWith('/')) throw new UsageError(`ROUTE is a path such as /v1/cambio/payment-notices, not "${route}"`);
  let body = bodyArg;
  if (bodyArg.startsWith('@')) {
    try {
      body = readFileSync(bodyArg.slice(1), 'utf8');
    } catch {
      throw new UsageError(`cannot read ${bodyArg.slice(1)}`);
    }
  }
  const method = (values.method ?? 'POST').toUpperCase();
  if (!/^[A-Z]+$/.test(method)) throw new UsageError(`--method must be an HTTP method, not "${values.method}"`);
  const base = (values.url ?? localBase()).replace(/\/+$/, '');
  const extraHeaders = (values.header ?? []).map(header);
  const { secret, from } = values.secret ? { secret: values.secret, from: '--secret' } : await localSecret();

  const { Webhook } = await import('standardwebhooks');
  const id = values.id ?? `msg_${randomBytes(12).toString('base64url')}`;
  const at = new Date(run.now);
  let signature: string;
  try {
    signature = new Webhook(secret).sign(id, at, body);
  } catch (err) {
    throw new UsageError(`the secret (${from}) is not a Standard Webhooks secret: ${(err as Error).message}`);
  }
  const headers: [string, string][] = [
    ['content-type', 'application/json'],
    ['webhook-id', id],
    ['webhook-timestamp', String(Math.floor(at.getTime() / 1000))],
    ['webhook-signature', signature],
    ...extraHeaders,
  ];
  const url = `${base}${route}`;
  // -sS: no progress meter when piped into sh (`paybridge sign ... | sh`), errors still shown.
  const curl = [`curl -sS -i -X ${method} ${shellQuote(url)}`, ...headers.map(([k, v]) => `-H ${shellQuote(`${k}: ${v}`)}`), `--data-raw ${shellQuote(body)}`];

  if (values.json) {
    io.out(JSON.stringify({ method, url, headers: Object.fromEntries(headers), body, curl: curl.join(' ') }, null, 2));
  } else {
    io.out(curl.join(' \\\n  '));
  }
  let isJson = true;
  try {
    JSON.parse(body);
  } catch {
    isJson = false;
  }
  io.err(`signed with ${from}; the routes accept it for 5 minutes${isJson ? '' : '. The body is not JSON: expect 400 malformed-json'}`);
  return 0;
}

/** Where the local stack answers: its file's URL while it runs, else PORT (default 3000) on loopback. */
function localBase(): string {
  return readLocalFile()?.apiUrl ?? `http://127.0.0.1:${process.env.PORT ?? 3000}`;
}
