import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createLogger } from '../log.js';
import { silenceSdkNodeVersionWarning } from '../quiet.js';
import { preflight, readOther } from './preflight.js';
import { HTTP_ROUTES } from './routes.js';
import { DEV_API_KEY, startStack } from './stack.js';

/** `npm start`: the whole bundle on PORT (default 3000), records kept under .data/ across restarts. */
async function main(): Promise<void> {
  silenceSdkNodeVersionWarning();
  const dataDir = resolve(process.env.PAYBRIDGE_DATA_DIR ?? '.data/dynalite');
  const port = Number(process.env.PORT ?? 3000);
  const defaultLocalFile = resolve(process.env.PAYBRIDGE_LOCAL_FILE ?? '.data/local.json');
  // A second npm start in the same folder: say which port and data folder are taken, and what to do.
  const conflict = Number.isInteger(port) && port > 0 ? await preflight({ port, dataDir, localFile: defaultLocalFile, cwd: process.cwd() }) : undefined;
  if (conflict) {
    process.stderr.write(`${conflict}\n`);
    process.exit(1);
  }
  const stack = await startStack({
    dataDir,
    // Beside the records: `.data/log-hash-key` by default (see localLogHashKey).
    logHashKeyFile: join(dirname(dataDir), 'log-hash-key'),
    log: createLogger({ service: 'paybridge', stage: 'local' }),
    ...(process.env.SWEEP_INTERVAL_SECONDS ? { sweepIntervalMs: Number(process.env.SWEEP_INTERVAL_SECONDS) * 1000 } : {}),
    ...(process.env.KONTANTANALYS_SYNC_INTERVAL_SECONDS ? { kontantanalysSyncIntervalMs: Number(process.env.KONTANTANALYS_SYNC_INTERVAL_SECONDS) * 1000 } : {}),
  });
  // The key of the first entry (`name=key` or a bare key): what a curl example can send.
  const apiKey = stack.deps.config.apiKeys[0]?.key ?? DEV_API_KEY;
  // Where `npx paybridge` finds this running stack (it is written on start and removed on stop). A stack
  // started beside a running one (its own PORT and PAYBRIDGE_DATA_DIR) leaves the other's file alone.
  const localFile = !process.env.PAYBRIDGE_LOCAL_FILE && readOther(defaultLocalFile) ? resolve(`.data/local-${new URL(stack.url).port}.json`) : defaultLocalFile;
  mkdirSync(dirname(localFile), { recursive: true });
  writeFileSync(
    localFile,
    JSON.stringify({
      pid: process.pid,
      apiUrl: stack.url,
      apiKey,
      dynamoEndpoint: stack.dynamoEndpoint,
      tableName: stack.deps.config.TABLE_NAME,
      sandboxes: { cambio: stack.cambio?.url, nif: stack.nif?.url, brp: stack.brp?.url, kontantanalys: stack.kontantanalys?.url },
    }, null, 2),
  );
  const lines = [
    '',
    `paybridge is running on ${stack.url}`,
    `  records:     dynalite, kept in ${dataDir}`,
    `  retry queue: in-process (delays, visibility timeout, dead letters after 5 receives); sweep every minute`,
    `  cambio:      ${stack.cambio ? `sandbox at ${stack.cambio.url} (${stack.cambio.options.ratePerSecond} req/s, ${stack.cambio.options.limiter} limiter)` : process.env.CAMBIO_BASE_URL}`,
    `  nif:         ${stack.nif ? `sandbox at ${stack.nif.url} (both generations; club tokens for ClubId ${Object.keys(stack.nif.options.clubTokens).join(', ')}; corporate club ${stack.nif.options.corporateClubs.join(', ')})` : 'configured endpoints'}`,
    `  brp:         ${stack.brp ? `sandbox at ${stack.brp.url} (products 10, 11: goods; 20: a service)` : process.env.BRP_BASE_URL}`,
    `  kontantanalys: ${stack.kontantanalys ? `sandbox at ${stack.kontantanalys.url} (${stack.kontantanalys.options.seededProviders} registered providers; scheduled run daily)` : process.env.KONTANTANALYS_BASE_URL}`,
    `  dev API key: ${apiKey}`,
    '',
    'Routes:',
    ...HTTP_ROUTES.map((r) => `  ${r.method.padEnd(5)}${stack.url}${r.path}`),
    '',
    'Try:',
    `  curl -i -X POST ${stack.url}/v1/cambio/payment-notices \\`,
    `    -H 'x-api-key: ${apiKey}' -H 'content-type: application/json' \\`,
    `    -d '{"status":"PAID","contactId":"demo-1","paymentType":"CARD"}'`,
    `  curl -s ${stack.url}/v1/payments/cambio/demo-1 -H 'x-api-key: ${apiKey}'`,
    `  curl -i -X POST ${stack.url}/v1/nif/membership/payments -H 'x-api-key: ${apiKey}' -H 'ClubId: 4568' \\`,
    `    -H 'content-type: application/json' -d '{"amount":"450","externalId":"3248","isPaid":"true","orgId":"4568","paidDate":"${new Date().getFullYear()}-05-08","paidToOrgId":"4568","paymentCategory":"Club membership","paymentTypeId":0,"periodFrom":"${new Date().getFullYear()}-05-08","periodTo":"${new Date().getFullYear()}-06-08","personId":"8675682"}'`,
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  const stop = async () => {
    // Only our own: another stack may have written the file since.
    if (readOwner(localFile) === process.pid) rmSync(localFile, { force: true });
    // Sends in flight finish and are recorded (bounded); anything still queued is picked up at the next start.
    process.stdout.write('stopping: letting sends in flight finish (at most 5 s)…\n');
    await stack.close({ drainMs: 5_000 });
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}

function readOwner(file: string): number | undefined {
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as { pid?: number }).pid;
  } catch {
    return undefined;
  }
}

main().catch((err: Error) => {
  process.stderr.write(`paybridge failed to start: ${err.message}\n`);
  process.exit(1);
});
