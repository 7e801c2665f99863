import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createLogger } from '../log.js';
import { silenceSdkNodeVersionWarning } from '../quiet.js';
import { banner } from './banner.js';
import { humanConsole, logFormat } from './console.js';
import { preflight, readOther } from './preflight.js';
import { HTTP_ROUTES } from './routes.js';
import { DEV_API_KEY, DEV_WEBHOOK_SECRET, localQueueKind, startStack } from './stack.js';
import { registerReceiver, startReceiver } from '../events/receiver.js';

/** How often the human output sums up the metrics (and once more at stop). */
const SUMMARY_EVERY_MS = 60_000;

function readOwner(file: string): number | undefined {
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as { pid?: number }).pid;
  } catch {
    return undefined;
  }
}

/** `npm start`: the whole bundle on PORT (default 3000), records kept under .data/ across restarts. */
async function main(): Promise<void> {
  silenceSdkNodeVersionWarning();
  // Whatever this process writes (dynalite's files with the records' personIds, local.json, the keys) is
  // its owner's alone (issue 20 item 10).
  process.umask(0o077);
  const format = logFormat(process.env.LOG_FORMAT, Boolean(process.stdout.isTTY));
  const dataDir = resolve(process.env.PAYBRIDGE_DATA_DIR ?? '.data/dynalite');
  const port = Number(process.env.PORT ?? 3000);
  const defaultLocalFile = resolve(process.env.PAYBRIDGE_LOCAL_FILE ?? '.data/local.json');
  // A second npm start in the same folder: say which port and data folder are taken, and what to do.
  const conflict = Number.isInteger(port) && port > 0 ? await preflight({ port, dataDir, localFile: defaultLocalFile, cwd: process.cwd() }) : undefined;
  if (conflict) {
    process.stderr.write(`${conflict}\n`);
    process.exit(1);
  }
  // For people at a terminal: a line per request and a metrics summary. Into a pipe: the JSON lines and
  // EMF documents Lambda writes, unchanged.
  const human = format === 'human' ? humanConsole({ write: (line) => void process.stdout.write(`${line}\n`), level: process.env.LOG_LEVEL }) : undefined;
  // Read before the stack starts: it puts the key it keeps in a file into process.env itself.
  const hashKeyGiven = Boolean(process.env.LOG_HASH_KEY);
  // Beside log-hash-key, owner-only: what `npx paybridge` presents to the local hooks (OPERATOR_KEYS unset).
  const operatorKeyFile = join(dirname(dataDir), 'operator-key');
  const stack = await startStack({
    localQueue: localQueueKind(process.env.LOCAL_QUEUE),
    dataDir,
    // Beside the records: `.data/log-hash-key` by default (see localLogHashKey).
    logHashKeyFile: join(dirname(dataDir), 'log-hash-key'),
    operatorKeyFile,
    log: human?.log ?? createLogger({ service: 'paybridge', stage: 'local' }),
    ...(human ? { metrics: human.metrics } : {}),
    ...(process.env.SWEEP_INTERVAL_SECONDS ? { sweepIntervalMs: Number(process.env.SWEEP_INTERVAL_SECONDS) * 1000 } : {}),
    ...(process.env.KONTANTANALYS_SYNC_INTERVAL_SECONDS ? { kontantanalysSyncIntervalMs: Number(process.env.KONTANTANALYS_SYNC_INTERVAL_SECONDS) * 1000 } : {}),
  });
  // The key of the first entry (`name=key` or a bare key): what a curl example can send.
  const apiKey = stack.deps.config.apiKeys[0]?.key ?? DEV_API_KEY;
  // Events out (issue 21): a receiver on loopback, registered for that caller, for `paybridge events tail`.
  let receiverSecret = '';
  const receiver = await startReceiver({ port: Number(process.env.EVENT_RECEIVER_PORT ?? 0), secret: () => [receiverSecret] });
  const caller = stack.deps.config.apiKeys[0]?.caller;
  if (caller) receiverSecret = (await registerReceiver(stack.events.store, caller, receiver.url, join(dirname(dataDir), 'event-receiver.json'))).secret;
  // Where `npx paybridge` finds this running stack (it is written on start and removed on stop). A stack
  // started beside a running one (its own PORT and PAYBRIDGE_DATA_DIR) leaves the other's file alone.
  const beside = !process.env.PAYBRIDGE_LOCAL_FILE && readOther(defaultLocalFile) !== undefined;
  const localFile = beside ? resolve(`.data/local-${new URL(stack.url).port}.json`) : defaultLocalFile;
  mkdirSync(dirname(localFile), { recursive: true });
  writeFileSync(
    localFile,
    JSON.stringify(
      {
        pid: process.pid,
        apiUrl: stack.url,
        apiKey,
        dynamoEndpoint: stack.dynamoEndpoint,
        tableName: stack.deps.config.TABLE_NAME,
        eventReceiver: receiver.url,
        sandboxes: { cambio: stack.cambio?.url, nif: stack.nif?.url, brp: stack.brp?.url, kontantanalys: stack.kontantanalys?.url },
        // So `paybridge payments show` hides personal data behind the same `ref:` hashes as the status
        // route and the logs (the key itself stays in its owner-only file).
        ...(hashKeyGiven ? {} : { logHashKeyFile: join(dirname(dataDir), 'log-hash-key') }),
        // The key stays in its own owner-only file; this names it.
        ...(stack.operatorKey ? { operatorKeyFile } : {}),
      },
      null,
      2,
    ),
    // It names the API key and where the operator key is: the owner's only, like log-hash-key (issue 20 item 10).
    { mode: 0o600 },
  );
  chmodSync(localFile, 0o600);
  const configured = process.env.WEBHOOK_SECRET?.trim().split(/\s+/)[0]?.replace(/^[a-z0-9-]+=/, '');
  const lines = banner({
    url: stack.url,
    ...(stack.sqsEndpoint ? { queue: `SQS (fauxqs) on ${stack.sqsEndpoint}, polled as Lambda's event source mapping does (LOCAL_QUEUE=sqs)` } : {}),
    apiKey,
    webhookSecret: configured || DEV_WEBHOOK_SECRET,
    webhookSecretFrom: configured ? 'WEBHOOK_SECRET' : 'dev',
    dataDir,
    localFile,
    ...(stack.operatorKey ? { operatorKeyFile } : {}),
    defaultLocalFile: localFile === resolve('.data/local.json'),
    sandboxes: [
      { name: 'cambio', url: stack.cambio?.url, about: stack.cambio ? `${stack.cambio.options.ratePerSecond} req/s, ${stack.cambio.options.limiter} limiter; contactId ERROR… is refused` : `not a sandbox: ${process.env.CAMBIO_BASE_URL}` },
      {
        name: 'nif',
        url: stack.nif?.url,
        about: stack.nif
          ? `both generations; club tokens for ClubId ${Object.keys(stack.nif.options.clubTokens).join(', ')}; corporate club ${stack.nif.options.corporateClubs.join(', ')}; personId 1002 is unknown to it`
          : 'not a sandbox: the configured endpoints',
      },
      { name: 'brp', url: stack.brp?.url, about: stack.brp ? 'products 10, 11: goods; 20: a service' : `not a sandbox: ${process.env.BRP_BASE_URL}` },
      {
        name: 'kontantanalys',
        url: stack.kontantanalys?.url,
        about: stack.kontantanalys ? `${stack.kontantanalys.options.seededProviders} registered providers; scheduled run daily` : `not a sandbox: ${process.env.KONTANTANALYS_BASE_URL}`,
      },
    ],
    routes: HTTP_ROUTES,
    ...(caller ? { eventReceiver: receiver.url } : {}),
    format,
    consoleUrl: stack.consoleUrl,
    ...(stack.operatorKey ? { operatorKeyFrom: join(dirname(dataDir), 'operator-key') } : process.env.OPERATOR_KEYS?.trim() ? { operatorKeyFrom: 'of OPERATOR_KEYS' } : {}),
    tryKey: `try-${randomBytes(3).toString('hex')}`,
    year: new Date().getFullYear(),
    cwd: process.cwd(),
  });
  process.stdout.write(`${lines.join('\n')}\n`);
  // LOG_LEVEL=silent asks for quiet: no summaries either (the total at stop is kept).
  const summaries = human && process.env.LOG_LEVEL?.trim().toLowerCase() !== 'silent'
    ? setInterval(() => {
        const line = human.summary('last minute');
        if (line) process.stdout.write(`${line}\n`);
      }, SUMMARY_EVERY_MS)
    : undefined;
  summaries?.unref();
  const stop = async () => {
    clearInterval(summaries);
    // Only our own: another stack may have written the file since.
    if (readOwner(localFile) === process.pid) rmSync(localFile, { force: true });
    // Sends in flight finish and are recorded (bounded); anything still queued is picked up at the next start.
    process.stdout.write('stopping: letting sends in flight finish (at most 5 s)…\n');
    await stack.close({ drainMs: 5_000 });
    await receiver.close();
    const total = human?.total('since start');
    if (total) process.stdout.write(`${total}\n`);
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}

main().catch((err: Error) => {
  process.stderr.write(`paybridge failed to start: ${err.message}\n`);
  process.exit(1);
});
