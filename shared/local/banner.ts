import { relative } from 'node:path';

/** What `npm start` knows when it prints its banner. */
export interface BannerInput {
  url: string;
  /** The retry queue line when it is not the in-process queue (LOCAL_QUEUE=sqs). */
  queue?: string;
  apiKey: string;
  /** The secret the routes verify signed webhooks with (the dev secret unless WEBHOOK_SECRET is set). */
  webhookSecret: string;
  webhookSecretFrom: 'dev' | 'WEBHOOK_SECRET';
  dataDir: string;
  localFile: string;
  /** The owner-only file of the operator key npm start made; absent when OPERATOR_KEYS is set. */
  operatorKeyFile?: string;
  /** Whether `npx paybridge` finds this stack without PAYBRIDGE_LOCAL_FILE (its file is `.data/local.json`). */
  defaultLocalFile: boolean;
  /** Each system's sandbox, or what it posts to instead. */
  sandboxes: { name: string; url?: string; about: string }[];
  routes: { method: string; path: string }[];
  /** Events out (issue 21): npm start's receiver, registered for the first API key's caller. */
  eventReceiver?: string;
  format: 'human' | 'json';
  /** The operator console's URL, and where its sign-in key is (a file npm start made, or OPERATOR_KEYS). */
  consoleUrl?: string;
  operatorKeyFrom?: string;
  /** A key no earlier run has used, so the examples post (201) instead of answering a replay or a conflict. */
  tryKey: string;
  year: number;
  cwd: string;
}

const shown = (cwd: string, path: string) => {
  const rel = relative(cwd, path);
  return rel && !rel.startsWith('..') ? rel : path;
};

/**
 * The banner: where everything is, the credentials a request needs, and examples that work as printed
 * (issue 15: the NIF example reused the README's key with another body and answered 422 once the
 * README had been followed; its dates were a fixed year; the webhook secret was not shown at all).
 */
export function banner(b: BannerInput): string[] {
  const cli = b.defaultLocalFile ? 'npx paybridge' : `PAYBRIDGE_LOCAL_FILE=${shown(b.cwd, b.localFile)} npx paybridge`;
  const y = b.year;
  const nif = JSON.stringify({
    amount: '450', externalId: b.tryKey, isPaid: 'true', orgId: '7896', paidDate: `${y}-05-08`, paidToOrgId: '4568', paymentCategory: 'Club membership',
    paymentTypeId: 0, periodFrom: `${y}-05-08`, periodTo: `${y}-06-08`, personId: '8675682',
  });
  const width = Math.max(...b.sandboxes.map((s) => s.name.length));
  return [
    '',
    `paybridge is running on ${b.url}`,
    `  records       dynalite, kept in ${shown(b.cwd, b.dataDir)} (a restart keeps them)`,
    `  retry queue   ${b.queue ?? 'in-process: delays, visibility timeout, dead letters after 5 receives'}; sweep every minute`,
    `  API key       x-api-key: ${b.apiKey}`,
    `  webhooks      ${b.webhookSecretFrom === 'dev' ? 'dev secret' : 'WEBHOOK_SECRET'} ${b.webhookSecret} (sender "webhook"); ${cli} sign ROUTE BODY prints a signed curl`,
    ...(b.consoleUrl ? [`  console       ${b.consoleUrl} (sign in with the operator key ${b.operatorKeyFrom ? (b.operatorKeyFrom.startsWith('/') ? `in ${shown(b.cwd, b.operatorKeyFrom)}` : b.operatorKeyFrom) : 'of OPERATOR_KEYS'})`] : []),
    `  operator      ${cli} --help (this stack is in ${shown(b.cwd, b.localFile)}; ${
      b.operatorKeyFile ? `operator key in ${shown(b.cwd, b.operatorKeyFile)}, owner-only` : 'OPERATOR_KEYS is set: give the command one as PAYBRIDGE_OPERATOR_KEY'
    })`,
    ...(b.eventReceiver ? [`  events out    a receiver at ${b.eventReceiver} gets this key's events, signed; ${cli} events tail prints them`] : []),
    b.format === 'human'
      ? '  output        a line per request and per retry, metrics every minute and at stop (LOG_FORMAT=json: the JSON lines Lambda writes)'
      : '  output        JSON lines and CloudWatch EMF, as in Lambda (LOG_FORMAT=human: a line per request)',
    '',
    `Sandboxes (${cli} sandbox SYSTEM --fault 403 makes the next call fail; or POST <url>/__sandbox/faults {"faults":["403"]}):`,
    ...b.sandboxes.map((s) => `  ${s.name.padEnd(width)}  ${s.url ?? '-'}  ${s.about}`),
    '',
    'Routes:',
    ...b.routes.map((r) => `  ${r.method.padEnd(5)}${b.url}${r.path}`),
    '',
    'Try (a fresh key each start):',
    `  curl -i -X POST ${b.url}/v1/cambio/payment-notices -H 'x-api-key: ${b.apiKey}' -H 'content-type: application/json' \\`,
    `    -d '{"status":"PAID","contactId":"${b.tryKey}","paymentType":"CARD"}'`,
    `  curl -s ${b.url}/v1/payments/cambio/${b.tryKey} -H 'x-api-key: ${b.apiKey}'`,
    `  ${cli} sign /v1/cambio/payment-notices '{"status":"PAID","contactId":"${b.tryKey}-w","paymentType":"CASH"}' | sh`,
    `  curl -i -X POST ${b.url}/v1/nif/payments -H 'x-api-key: ${b.apiKey}' -H 'content-type: application/json' \\`,
    `    -d '${nif}'`,
    `  ${cli} payments list`,
    '',
  ];
}
