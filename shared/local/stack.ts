import { randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { AddressInfo } from 'node:net';
import dynalite from 'dynalite';
import { makeHandler as makeRetryWorker } from '../../functions/retry-worker.js';
import { makeHandler as makeSweep } from '../../functions/sweep.js';
import { parseConfig, type SystemName } from '../config.js';
import type { EngineSettings } from '../core/lifecycle.js';
import { pacedRate, type PacingSettings } from '../core/pacing.js';
import { sweep, type SweepReport } from '../core/recovery.js';
import { buildDeps, type AppDeps } from '../deps.js';
import { MIN_OPERATOR_KEY_LENGTH, parseOperatorKeys, type Operator } from '../http/operators.js';
import { ProblemError, validationProblem, type FieldError } from '../http/problem.js';
import { createLogger, type Logger } from '../log.js';
import { createMetrics, memoryMetrics, type Metrics } from '../metrics.js';
import { DEFAULT_LOCAL_QUEUE, LocalRetryQueue, type BatchConsumer, type LocalQueueOptions } from '../queue/local.js';
import { retryMessageFields, type RetryMessage, type RetryQueue } from '../queue/port.js';
import { systemOfPk, type Fence, type PaymentRecord } from '../core/types.js';
import { makeConsoleHandler, type ConsoleDeps } from '../console/handler.js';
import { OverviewRecorder } from '../console/recorder.js';
import { sessionSecret } from '../console/session.js';
import { AuditLog, browsePayments } from '../store/browse.js';
import { documentClient } from '../store/client.js';
import { DynamoFenceStore, DynamoLimiterStore, DynamoRecordStore, makeDynamoClient } from '../store/dynamo.js';
import { ensureTable } from '../store/table.js';
import { Deliverer, type DeliverySettings } from '../events/deliver.js';
import { EventRelay } from '../events/relay.js';
import { dueEvent, type OutboxRecord } from '../events/model.js';
import { attachEvents, configuredCallers } from '../events/runtime.js';
import { ENDPOINT_PK_PREFIX, EventStore } from '../events/store.js';
import type { RecordStore } from '../store/port.js';
import { DynamoWebhookStore } from '../store/webhooks.js';
import { CambioSandbox, type CambioSandboxOptions } from '../systems/cambio/simulator.js';
import { makeDispatcher } from '../systems/http.js';
import { NifSandbox, type NifSandboxOptions } from '../systems/nif/simulator.js';
import { BrpSandbox, type BrpSandboxOptions } from '../systems/brp/simulator.js';
import { KontantanalysSandbox, type KontantanalysSandboxOptions } from '../systems/kontantanalys/simulator.js';
import { makeHandler as makeKontantanalysSync } from '../../functions/kontantanalys-sync.js';
import { buildSystems } from '../systems/registry.js';
import { FaultPlan, parseFaultRates, parseLimiterKind, type LimiterKind } from '../systems/sandbox.js';
import { configuredRate, type SystemModule } from '../systems/types.js';
import { indexForListing, reindexUnfinished } from './reindex.js';
import { countWrites, tapDynalite, trackDynalite, type DynamoExchange } from './dynamo-tap.js';
import { invokeLocalEnvironment } from './invoke-env.js';
import { lambdaContext, startLocalApi } from './server.js';
import { SQS_PATH, sqsCall } from './sqs-endpoint.js';
import type { SqsLocalQueue } from './sqs-poller.js';

export const DEV_API_KEY = 'pb_dev_local_key';
/** A fixed local secret so a terminal simulator can sign; never used outside `npm start`. */
export const DEV_WEBHOOK_SECRET = `whsec_${Buffer.from('paybridge-local-webhook-secret!!').toString('base64')}`;

/**
 * A secret the local stack keeps in `file` (readable by its owner only), made once at random. Two stacks
 * starting at once agree on one: the file is created exclusively, and the loser reads it. A value
 * shorter than `minLength` (a damaged file) is replaced by a new one.
 */
function localSecret(file: string, make: () => string, minLength: number): string {
  const read = (): string | undefined => {
    try {
      const value = readFileSync(file, 'utf8').trim();
      return value.length >= minLength ? value : undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  };
  const existing = read();
  if (existing) return existing;
  mkdirSync(dirname(file), { recursive: true });
  const value = make();
  try {
    writeFileSync(file, `${value}\n`, { mode: 0o600, flag: existsSync(file) ? 'w' : 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return read() ?? value;
  }
  return value;
}

/**
 * The local stack's LOG_HASH_KEY: made once, at random, and kept in `file` (readable by its owner
 * only), so the hashes in the logs of a payment stay the same across restarts, as the records do.
 */
export function localLogHashKey(file: string): string {
  // As long as config.ts requires of LOG_HASH_KEY; anything shorter is replaced by a new random key.
  return localSecret(file, () => randomBytes(32).toString('hex'), 16);
}

/** The name of the operator `npm start` makes when OPERATOR_KEYS is unset. */
export const LOCAL_OPERATOR = 'local';

/**
 * The local stack's operator key when OPERATOR_KEYS is unset: made once and kept in `file` (owner-only,
 * beside log-hash-key), so `npx paybridge` on this machine can act and a caller's key cannot.
 */
export function localOperatorKey(file: string): string {
  return localSecret(file, () => `pbop_${randomBytes(32).toString('base64url')}`, MIN_OPERATOR_KEY_LENGTH);
}

/**
 * Dynalite's folder holds the records, raw personIds included (issue 20 item 10): its owner's only. A
 * folder made by an earlier version (0755, files 0644) is tightened too. LevelDB keeps its files in
 * the one folder; the walk stays there. New files follow the process's umask (npm start sets 077).
 */
export function ownerOnlyDataDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  for (const name of readdirSync(dir)) {
    const file = join(dir, name);
    const mode = statSync(file).mode;
    if (mode & 0o077) chmodSync(file, mode & 0o700);
  }
}

/** Hooks a viewer may call: they only read. Every other hook acts, or hands out secrets (invoke-env). */
const VIEWER_HOOKS = new Set(['dlq']);

/** Fence ids of the console's actions: its own id and a counter, like a worker's. */
function consoleFences(): () => Fence {
  const id = `console.${randomBytes(6).toString('base64url')}`;
  let n = 0;
  return () => ({ id, n: n++ });
}

export interface StackOptions {
  env?: Record<string, string | undefined>;
  /** 0 picks a free port (tests). */
  port?: number;
  /** Where dynalite keeps its LevelDB files; in memory when absent. */
  dataDir?: string;
  /**
   * Where LOG_HASH_KEY is kept when the environment sets none (`npm start`: beside the records, so the
   * hashes in the logs of a payment stay the same across restarts, as the records do). Absent: a random
   * key for this process (tests; the records are in memory and die with it too).
   */
  logHashKeyFile?: string;
  /**
   * Where the operator key is kept when the environment sets no OPERATOR_KEYS (`npm start`:
   * `.data/operator-key`). Absent: a random key for this process (tests read it as `stack.operatorKey`).
   */
  operatorKeyFile?: string;
  /** The sweep's schedule; false turns it off (tests call `sweepNow`). */
  sweepIntervalMs?: number | false;
  settings?: Partial<EngineSettings>;
  pacing?: Partial<PacingSettings>;
  queue?: Partial<LocalQueueOptions>;
  /**
   * Which retry queues: `memory`, the in-process queue (the default: it starts at once), or `sqs`, an
   * SQS server in this process (fauxqs on 127.0.0.1) that the functions' SQS adapter talks to and a
   * poller that does what Lambda's event source mapping does (shared/local/sqs-poller.ts). `npm start`
   * passes LOCAL_QUEUE's (localQueueKind). Absent: memory.
   */
  localQueue?: LocalQueueKind;
  /**
   * Retry workers per system, each with its own view of the shared limiter (like separate Lambda
   * containers); the first shares the HTTP routes' view (one process). Default 1.
   */
  workers?: number;
  /** Runs the boot sweep (re-enqueues what a previous run left due, settles what it left unfinished). Default true. */
  bootSweep?: boolean;
  cambio?: CambioSandboxOptions;
  nif?: NifSandboxOptions;
  brp?: BrpSandboxOptions;
  kontantanalys?: KontantanalysSandboxOptions;
  /** The Kontantanalys run's schedule; false turns it off (tests call `kontantanalysSyncNow`). */
  kontantanalysSyncIntervalMs?: number | false;
  log?: Logger;
  /** Where the metrics go; without one, EMF lines on stdout (in memory when LOG_LEVEL is silent). */
  metrics?: Metrics;
  clock?: () => number;
  /** Extra system modules (test doubles), or replacements of built-in ones by name. */
  modules?: (built: Map<string, SystemModule>) => SystemModule[];
  /**
   * Sees every request that reaches the local DynamoDB, from any client (the no-Scan guard test and the
   * capacity tools count them: test/integration/no-scan.test.ts, test/bench/capacity.ts).
   */
  onDynamoRequest?: (exchange: DynamoExchange) => void;
  /** Events out (issue 21): the delivery schedule and timeouts (tests shorten them). */
  delivery?: Partial<DeliverySettings>;
  /**
   * A DynamoDB endpoint already running (a loopback one), used instead of starting dynalite in this
   * process: a benchmark keeps the database's own work off the functions' event loop, as it is in AWS
   * (test/bench/bench.ts). `dataDir` and `onDynamoRequest` do not apply to it.
   */
  dynamoEndpoint?: string;
  /** How long each route's function may run, as Lambda's timeout (29 s, API Gateway's limit; tests shorten it). */
  functionTimeoutMs?: number;
}

export type LocalQueueKind = 'memory' | 'sqs';

/** LOCAL_QUEUE's value; anything but the two names stops the start, naming the variable. */
export function localQueueKind(value: string | undefined): LocalQueueKind {
  const v = value?.trim().toLowerCase();
  if (!v || v === 'memory') return 'memory';
  if (v === 'sqs') return 'sqs';
  throw new Error(`invalid configuration: LOCAL_QUEUE must be memory (the in-process queue, the default) or sqs (fauxqs, the real SQS code path), not ${JSON.stringify(value)}`);
}

/** What the stack needs of its retry queues, whichever kind they are. */
export interface StackQueue extends RetryQueue {
  depth(system: string): Promise<number | undefined>;
  /** One retry worker of `system` (its batches, at most `concurrency` at once). */
  addConsumer(system: string, handle: BatchConsumer): void;
  /** True once every queue is empty and no batch runs, false after `timeoutMs`. */
  idle(timeoutMs: number): Promise<boolean>;
  /** Hands out no more batches (a stop); those in flight finish. */
  pause(): void;
  /** True once no batch is in flight, false after `timeoutMs`. */
  settled(timeoutMs: number): Promise<boolean>;
  deadLetterCount(): Promise<number>;
  redriveDeadLetters(system?: string): number | Promise<number>;
  close(): void;
}

export interface Stack<Q extends StackQueue = LocalRetryQueue> {
  url: string;
  /** The operator console's page. */
  consoleUrl: string;
  /** Who may sign in to the console and call the local hooks. */
  operators: Map<string, Operator>;
  deps: AppDeps;
  /** Every worker's deps (the first is `deps`). */
  workerDeps: AppDeps[];
  queue: Q;
  /** Which kind `queue` is, and for `sqs` the SQS server's endpoint. */
  queueKind: LocalQueueKind;
  sqsEndpoint?: string;
  dynamoEndpoint: string;
  cambio: CambioSandbox | undefined;
  nif: NifSandbox | undefined;
  brp: BrpSandbox | undefined;
  kontantanalys: KontantanalysSandbox | undefined;
  /** Events out (issue 21): the outbox's relay and the per-endpoint deliverer of this process. */
  events: { store: EventStore; relay: EventRelay; deliverer: Deliverer };
  kontantanalysSyncNow(): Promise<unknown>;
  sweepNow(): Promise<SweepReport>;
  /** What the boot sweep found (undefined when it was turned off). */
  boot: SweepReport | undefined;
  /** The operator key the stack made (OPERATOR_KEYS unset), for the local hooks; undefined when OPERATOR_KEYS is set. */
  operatorKey: string | undefined;
  /**
   * Stops: no new requests or queue deliveries; attempts in flight get up to `drainMs` to finish and
   * record their outcome; whatever is still running then is cut off (nothing is sent afterwards).
   */
  close(opts?: { drainMs?: number }): Promise<void>;
  /** A crash, for tests: every attempt is cut off at once, nothing is recorded afterwards. */
  kill(): Promise<void>;
}

/**
 * The whole bundle on one machine: dynalite through the real AWS SDK, the local retry queue feeding
 * the retry worker handler, the sweep on its schedule, sandboxes for every system whose base URL is
 * unset, and the HTTP routes through the same handler factories as in Lambda.
 */
export async function startStack(opts?: StackOptions & { localQueue?: 'memory' }): Promise<Stack>;
export async function startStack(opts: StackOptions & { localQueue: 'sqs' }): Promise<Stack<SqsLocalQueue>>;
export async function startStack(opts?: StackOptions): Promise<Stack<StackQueue>>;
export async function startStack(opts: StackOptions = {}): Promise<Stack<StackQueue>> {
  const env: Record<string, string | undefined> = { ...(opts.env ?? process.env) };
  const cleanups: (() => Promise<void> | void)[] = [];
  const hashKey = env.LOG_HASH_KEY || (opts.logHashKeyFile ? localLogHashKey(opts.logHashKeyFile) : undefined);
  if (hashKey) {
    env.LOG_HASH_KEY = hashKey;
    // hashId (shared/log.ts) reads the process's environment, as in Lambda (shared/deps.ts).
    process.env.LOG_HASH_KEY = hashKey;
  }
  try {
    if (opts.dataDir) ownerOnlyDataDir(opts.dataDir);
    // With dynalite in this process, every endpoint write that reaches it is counted, whoever sent it (the
    // relay keeps endpoint lists until one: EventStore.endpointGeneration); with one given, only this process's.
    const { endpoint: dynamoEndpoint, endpointWrites } = opts.dynamoEndpoint !== undefined ? { endpoint: opts.dynamoEndpoint, endpointWrites: undefined } : await startDynalite(opts, cleanups);

    /** Starts one system's sandbox, tuned by SANDBOX_<NAME>_RPS / _LIMITER / _FAULTS / _PORT, and closes it with the stack. */
    const sandbox = async <T extends { start(port: number): Promise<T>; close(): Promise<void> }>(
      name: string,
      make: (tuning: { ratePerSecond?: number; limiter?: LimiterKind; faults: FaultPlan }) => T,
    ): Promise<T> => {
      const rps = env[`SANDBOX_${name}_RPS`];
      const limiter = parseLimiterKind(env[`SANDBOX_${name}_LIMITER`], `SANDBOX_${name}_LIMITER`);
      const started = await make({ ...(rps ? { ratePerSecond: Number(rps) } : {}), ...(limiter ? { limiter } : {}), faults: new FaultPlan(parseFaultRates(env[`SANDBOX_${name}_FAULTS`])) }).start(Number(env[`SANDBOX_${name}_PORT`] ?? 0));
      cleanups.push(() => started.close());
      return started;
    };

    const cambio = env.CAMBIO_BASE_URL ? undefined : await sandbox('CAMBIO', (t) => new CambioSandbox({ ...t, ...opts.cambio }));
    if (cambio) {
      Object.assign(env, {
        CAMBIO_BASE_URL: cambio.url,
        CAMBIO_TOKEN_URL: cambio.tokenUrl,
        CAMBIO_CLIENT_ID: cambio.options.clientId,
        CAMBIO_CLIENT_SECRET: cambio.options.clientSecret,
        CAMBIO_SUBSCRIPTION_KEY: cambio.options.subscriptionKey,
      });
    }
    const nif = env.NIF_MEMBERSHIP_BASE_URL && env.NIF_BASE_URL ? undefined : await sandbox('NIF', (t) => new NifSandbox({ ...t, ...opts.nif }));
    if (nif && !env.NIF_MEMBERSHIP_BASE_URL) {
      Object.assign(env, { NIF_MEMBERSHIP_BASE_URL: nif.url, NIF_SUBSCRIPTION_KEY: nif.options.subscriptionKey, NIF_CLUB_TOKENS: JSON.stringify(nif.options.clubTokens) });
    }
    if (nif && !env.NIF_BASE_URL) {
      Object.assign(env, { NIF_BASE_URL: nif.url, NIF_TOKEN_URL: nif.tokenUrl, NIF_CLIENT_ID: nif.options.clientId, NIF_CLIENT_SECRET: nif.options.clientSecret });
    }
    const brp = env.BRP_BASE_URL ? undefined : await sandbox('BRP', (t) => new BrpSandbox({ ...t, ...opts.brp }));
    if (brp) Object.assign(env, { BRP_BASE_URL: brp.url, BRP_API_KEY: brp.options.apiKey, BRP_USERNAME: brp.options.username, BRP_PASSWORD: brp.options.password });
    const kontantanalys = env.KONTANTANALYS_BASE_URL ? undefined : await sandbox('KONTANTANALYS', (t) => new KontantanalysSandbox({ ...t, ...opts.kontantanalys }));
    if (kontantanalys) {
      Object.assign(env, { KONTANTANALYS_BASE_URL: kontantanalys.url, KONTANTANALYS_USERNAME: kontantanalys.options.username, KONTANTANALYS_PASSWORD: kontantanalys.options.password });
    }
    env.API_KEYS ||= DEV_API_KEY;
    env.WEBHOOK_SECRET ||= DEV_WEBHOOK_SECRET;
    const operatorKey = env.OPERATOR_KEYS?.trim() ? undefined : opts.operatorKeyFile ? localOperatorKey(opts.operatorKeyFile) : `pbop_${randomBytes(32).toString('base64url')}`;
    const operators = parseOperatorKeys(operatorKey ? `${LOCAL_OPERATOR}=${operatorKey}` : env.OPERATOR_KEYS);
    env.DYNAMODB_ENDPOINT = dynamoEndpoint;
    // The queue lives in this process: a key of its own unless one is given. Set here, so the functions
    // `serverless invoke local` runs against this stack get it with the rest (shared/local/invoke-env.ts).
    env.RETRY_MESSAGE_KEY ||= randomBytes(32).toString('hex');

    const config = parseConfig(env);
    const client = makeDynamoClient({ endpoint: dynamoEndpoint, region: config.AWS_REGION });
    cleanups.push(() => client.destroy());
    const { listIndexAdded } = await ensureTable(client, config.TABLE_NAME);
    const clock = opts.clock ?? Date.now;
    const modules = buildSystems(config, makeDispatcher(), clock);
    for (const m of opts.modules?.(modules) ?? []) modules.set(m.name, m);
    const queueOptions: LocalQueueOptions = { ...DEFAULT_LOCAL_QUEUE, ...opts.queue };
    const queueKind = opts.localQueue ?? 'memory';
    let queue: StackQueue;
    let sqsEndpoint: string | undefined;
    if (queueKind === 'sqs') {
      // Loaded only for this kind: the default start does not pay for an SQS server and client it does not use.
      const [{ startFauxqs }, { SqsLocalQueue }] = await Promise.all([import('./fauxqs.js'), import('./sqs-poller.js')]);
      const sqs = await startFauxqs(
        [...modules.keys()],
        { visibilityTimeoutSeconds: Math.max(0, Math.ceil(queueOptions.visibilityTimeoutMs / 1000)), maxReceiveCount: queueOptions.maxReceiveCount },
        config.AWS_REGION,
      );
      cleanups.push(() => sqs.close());
      sqsEndpoint = sqs.endpoint;
      // Sends are signed by the functions' SQS adapter; the poller hands the bodies to the workers unchanged.
      queue = new SqsLocalQueue(sqs, queueOptions, config.messageKeys);
    } else {
      queue = new LocalRetryQueue(queueOptions, config.messageKeys);
    }
    const workerTimeoutMs = opts.queue?.invocationTimeoutMs ?? 60_000;
    cleanups.push(() => queue.close());
    // The console's overview listens to the lines and metrics the engine writes anyway.
    const recorder = new OverviewRecorder(clock);
    const log = recorder.log(opts.log ?? createLogger({ service: 'paybridge', stage: 'local' }, env.LOG_LEVEL));
    // Metric lines are CloudWatch's business: locally they are printed only when logs are.
    const metrics: Metrics = recorder.metrics(opts.metrics ?? (env.LOG_LEVEL === 'silent' ? memoryMetrics() : createMetrics()));
    // Events out (issue 21): every record write may stamp an event (shared/store/dynamo.ts); the relay hands
    // pending ones to the endpoints, woken after each write here and by its own poll and boot pass (a kill
    // between the write and the wake loses nothing: the mark is in the record).
    const eventStore = new EventStore(client, config.TABLE_NAME, Date.now, endpointWrites);
    const deliverer = new Deliverer(eventStore, { log, policy: { allowLoopback: true }, callers: () => configuredCallers({ config }), ...(opts.delivery ? { settings: opts.delivery } : {}) });
    const relay = new EventRelay(eventStore, { log, onDeliveries: (_ids, made) => deliverer.offer(made) });
    cleanups.push(() => deliverer.close());
    cleanups.push(() => relay.close());
    const store = wakingStore(new DynamoRecordStore(client, config.TABLE_NAME, config.INDEX_SHARDS), (written) => relay.offer(written as OutboxRecord));
    const fences = new DynamoFenceStore(client, config.TABLE_NAME);
    const limiter = new DynamoLimiterStore(client, config.TABLE_NAME);
    const webhooks = new DynamoWebhookStore(client, config.TABLE_NAME);
    // Each worker is its own "container": its own view of the shared limiter, its own fence ids.
    const workerDeps = Array.from({ length: Math.max(1, opts.workers ?? 1) }, (_, i) =>
      buildDeps(config, {
        // The first container is also the HTTP routes': its intake lane serves its worker too.
        lanesServeWorkers: i === 0,
        modules,
        clock,
        store,
        fences,
        limiter,
        queue,
        webhooks,
        ...(opts.settings ? { settings: opts.settings } : {}),
        ...(opts.pacing ? { pacing: opts.pacing } : {}),
        log,
        metrics,
      }),
    );
    // Every attempt's signal follows this: after a stop (or a simulated crash) nothing more is sent.
    const stopping = new AbortController();
    for (const d of workerDeps) d.stopping = stopping.signal;
    const deps = workerDeps[0] as AppDeps;
    for (const d of workerDeps) attachEvents(d, { store: eventStore, policy: { allowLoopback: true }, kick: (id) => deliverer.kick(id) });
    const getDeps = async () => deps;

    for (const name of modules.keys()) {
      for (const [i, d] of workerDeps.entries()) {
        const worker = makeRetryWorker(async () => d, name as SystemName);
        queue.addConsumer(name, (event) => worker(event, lambdaContext(`retry-${name}-${i}`, randomUUID(), workerTimeoutMs)));
      }
    }
    const sweepHandler = makeSweep(getDeps);
    const sweepNow = () => sweepHandler({} as never, lambdaContext('sweep', randomUUID(), 60_000));
    if (opts.sweepIntervalMs !== false) {
      const timer = setInterval(() => {
        sweepNow().catch((err: Error) => deps.log.error('sweep failed', { error: err }));
      }, opts.sweepIntervalMs ?? 60_000);
      cleanups.push(() => clearInterval(timer));
    }
    // Recovery at boot (issue 10): the local queue died with the previous process, so whatever the
    // records say is due is queued again, and attempts it left unfinished are settled as soon as their
    // deadlines have passed (a second look is scheduled for those still within theirs).
    let boot: SweepReport | undefined;
    if (opts.bootSweep !== false) {
      if (opts.dataDir) await reindexUnfinished(client, config.TABLE_NAME, log);
      if (opts.dataDir && listIndexAdded) await indexForListing(client, config.TABLE_NAME, log);
      // The process that left them is gone (dynalite's lock on the data directory admits one process),
      // and this one takes no request before this sweep ends: its unfinished attempts end now.
      boot = await sweep(deps, [...modules.keys()], { boot: true, previousRunEnded: true });
      if (boot.recheckAt !== undefined) {
        const timer = setTimeout(() => {
          sweep(deps, [...modules.keys()], { boot: true }).catch((err: Error) => deps.log.error('boot sweep failed', { error: err }));
        }, Math.max(0, boot.recheckAt - Date.now()) + 100);
        cleanups.push(() => clearTimeout(timer));
      }
    }

    if (opts.dataDir) await relay.recoverAtBoot();
    relay.start().kick();
    deliverer.start();

    const syncHandler = makeKontantanalysSync(getDeps);
    const kontantanalysSyncNow = () => syncHandler({} as never, lambdaContext('kontantanalysSync', randomUUID(), 900_000));
    if (opts.kontantanalysSyncIntervalMs !== false) {
      const timer = setInterval(() => {
        kontantanalysSyncNow().catch((err: Error) => deps.log.error('kontantanalys sync failed', { error: err }));
      }, opts.kontantanalysSyncIntervalMs ?? 86_400_000);
      cleanups.push(() => clearInterval(timer));
    }

    // The operator console (issue 22): the same operators as the local hooks (OPERATOR_KEYS, or the one key npm start keeps).
    const doc = documentClient(client);
    const consoleDeps: ConsoleDeps = {
      app: deps,
      operators,
      secret: sessionSecret(hashKey ?? randomBytes(32).toString('hex')),
      secure: false,
      audit: new AuditLog(doc, config.TABLE_NAME, config.RECORD_TTL_DAYS, clock),
      browse: (o) => browsePayments(doc, config.TABLE_NAME, o),
      fence: consoleFences(),
      paymentEvents: (record) => eventStore.paymentEvents(record),
      limiter,
      overview: async (now) => {
        const systems: Record<string, unknown> = {};
        for (const name of modules.keys()) systems[name] = { hour: recorder.series(name, 'hour', now), day: recorder.series(name, 'day', now) };
        return systems;
      },
    };
    const sampleRates = async () => {
      for (const [name, m] of modules) {
        const configured = configuredRate(m);
        const state = await limiter.read(name).catch(() => undefined);
        const depth = await queue.depth(name);
        recorder.sample(name, { ...(depth !== undefined ? { depth } : {}), ...(configured !== undefined ? { configured } : {}), ...(state && configured !== undefined ? { learnt: pacedRate(state, configured, clock()) } : {}) });
      }
    };
    const sampler = setInterval(() => void sampleRates().catch(() => undefined), 30_000);
    sampler.unref();
    cleanups.push(() => clearInterval(sampler));
    const consolePage = makeConsoleHandler(async () => consoleDeps);

    // Known once the gateway listens; the hooks below are only called after that.
    let apiUrl = '';
    const admin = async (hook: string, body: unknown, operator: Operator): Promise<unknown | undefined> => {
      if (!VIEWER_HOOKS.has(hook) && operator.role !== 'operator') {
        throw new ProblemError(403, 'operator-role-required', 'Operator role required', `The local hook ${hook} acts or hands out secrets: operator ${operator.name} is a viewer.`);
      }
      const b = body as { pk?: unknown; delaySeconds?: unknown; message?: unknown };
      if (hook === 'enqueue') {
        // A bad body is the operator's 400, not "no such hook" (404) or a 500 from the queue.
        const errors: FieldError[] = [];
        if (typeof b.pk !== 'string' || !b.pk.includes('#')) errors.push({ pointer: '#/pk', detail: 'is required: the record key (<system>#<tenant>#<key>) to enqueue' });
        if (b.delaySeconds !== undefined && !(Number.isInteger(b.delaySeconds) && (b.delaySeconds as number) >= 0 && (b.delaySeconds as number) <= 900)) {
          errors.push({ pointer: '#/delaySeconds', detail: 'must be a whole number of seconds from 0 to 900 (SQS DelaySeconds)' });
        }
        let message: RetryMessage | undefined;
        if (b.message !== undefined) {
          try {
            // Its record copy is dropped: the worker reads the record, so nothing the hook is given can
            // stand in for it (a made-up copy or fence then matches nothing: issue 20 item 4).
            const { record: _copy, ...named } = retryMessageFields(b.message);
            message = named;
          } catch (err) {
            errors.push({ pointer: '#/message', detail: `is not a retry message: ${(err as Error).message}` });
          }
        }
        if (errors.length > 0) throw validationProblem(errors, 'enqueue request');
        const pk = b.pk as string;
        // The operator command's own message (fence and snapshot) when it sends one; else a wake-up.
        await queue.send(message ?? { pk, system: systemOfPk(pk), reason: 'operator', now: true }, (b.delaySeconds as number | undefined) ?? 0);
        return { enqueued: 1 };
      }
      if (hook === 'dlq') return { count: await queue.deadLetterCount() };
      if (hook === 'dlq/redrive') return { moved: await queue.redriveDeadLetters() };
      if (hook === 'invoke-env') return invokeLocalEnvironment(config, apiUrl, dynamoEndpoint);
      return undefined;
    };
    const api = await startLocalApi(getDeps, opts.port ?? config.PORT, { operators, call: admin }, { path: SQS_PATH, call: (target, input) => sqsCall(queue, config.messageKeys, target, input) }, consolePage, opts.functionTimeoutMs);
    apiUrl = api.url;
    cleanups.push(() => api.close());

    let closing: Promise<void> | undefined;
    const finish = async () => {
      stopping.abort();
      for (const c of cleanups.reverse()) await c();
    };
    const close = (o: { drainMs?: number } = {}) =>
      (closing ??= (async () => {
        await api.close();
        queue.pause();
        if (o.drainMs) await queue.settled(o.drainMs);
        await finish();
      })());
    const kill = () => (closing ??= finish());
    return { url: api.url, consoleUrl: `${api.url}/console`, operatorKey, operators, deps, workerDeps, queue, queueKind, ...(sqsEndpoint ? { sqsEndpoint } : {}), dynamoEndpoint, cambio, nif, brp, kontantanalys, events: { store: eventStore, relay, deliverer }, kontantanalysSyncNow, sweepNow, boot, close, kill };
  } catch (err) {
    for (const c of cleanups.reverse()) await c();
    throw err;
  }
}

/**
 * The record store, waking `onWrite` after a write that stamped a settlement event (the local relay's
 * prompt; its poll and boot pass are the backstop). Other writes wake nothing: the relay's reads would
 * only compete with the engine for the one process dynalite shares with it.
 */
export function wakingStore(store: RecordStore, onWrite: (written: PaymentRecord) => void): RecordStore {
  // Asked before the write: the store stamps the event on the record object it is given (stampForWrite), and
  // after that the record says nothing is due. Asked after, no write ever woke the relay, and each event
  // waited for the relay's 2 s poll (bench:events p50 1,042 ms, of which ~1 s was that wait).
  const stamps = (record: PaymentRecord) => dueEvent(record) !== undefined;
  return {
    claim: async (record) => {
      const due = stamps(record);
      const r = await store.claim(record);
      // A copy: the engine goes on from its own object.
      if (r.claimed && due) onWrite(structuredClone(record));
      return r;
    },
    replace: async (record, expected) => {
      const due = stamps(record);
      const ok = await store.replace(record, expected);
      if (ok && due) onWrite(structuredClone(record));
      return ok;
    },
    get: (pk) => store.get(pk),
    getMany: (pks) => store.getMany(pks),
    due: (...args) => store.due(...args),
    list: (...args) => store.list(...args),
    // The console's and the CLI's listing (issue 22) reads through the same store.
    ...(store.browse ? { browse: store.browse.bind(store) } : {}),
  };
}

/** dynalite in this process on a loopback port, closed last with the stack; its endpoint, and a count of the endpoint writes it answered. */
async function startDynalite(opts: StackOptions, cleanups: (() => Promise<void> | void)[]): Promise<{ endpoint: string; endpointWrites: () => number }> {
  const db = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0, ...(opts.dataDir ? { path: opts.dataDir } : {}) });
  if (opts.onDynamoRequest) tapDynalite(db, opts.onDynamoRequest);
  const endpointWrites = countWrites(db, `"S":"${ENDPOINT_PK_PREFIX}`);
  const dynaliteRequests = trackDynalite(db);
  await new Promise<void>((resolve, reject) => {
    db.once('error', reject);
    db.listen(0, '127.0.0.1', () => resolve());
  });
  // Closed last (cleanups run in reverse): by then no client of ours sends more, and the requests
  // dynalite is still in are let finish (bounded) so none hits a closed database.
  cleanups.push(async () => {
    await dynaliteRequests.drained(3_000);
    await new Promise<void>((resolve) => db.close(() => resolve()));
  });
  return { endpoint: `http://127.0.0.1:${(db.address() as AddressInfo).port}`, endpointWrites };
}
