import { SQSClient } from '@aws-sdk/client-sqs';
import type { Dispatcher } from 'undici';
import { budgetsBySystem, PARAMETER_GROUP, parseConfig, SYSTEM_NAMES, type Config, type SystemName } from './config.js';
import type { EngineDeps } from './core/context.js';
import { DEFAULT_SETTINGS, type EngineSettings } from './core/lifecycle.js';
import { Pacer } from './core/pacer.js';
import { DEFAULT_PACING, type PacingSettings } from './core/pacing.js';
import type { AuthSettings } from './http/auth.js';
import { createLogger, type Logger } from './log.js';
import { createMetrics, type Metrics } from './metrics.js';
import type { RetryQueue } from './queue/port.js';
import { SqsRetryQueue } from './queue/sqs.js';
import { resolveParameters } from './secrets.js';
import { DynamoFenceStore, DynamoLimiterStore, DynamoRecordStore, makeDynamoClient } from './store/dynamo.js';
import type { FenceStore, LimiterStore, RecordStore, WebhookStore } from './store/port.js';
import { DynamoWebhookStore } from './store/webhooks.js';
import { makeDispatcher } from './systems/http.js';
import { buildSystems } from './systems/registry.js';
import type { SystemModule } from './systems/types.js';

/** Everything a handler needs, injected so tests and the local stack pass their own parts. */
export interface AppDeps extends EngineDeps {
  config: Config;
  auth: AuthSettings;
  /** Every system module by name (the status route lists them). */
  modules: Map<string, SystemModule>;
  /** Webhook ids already received (shared/http/webhooks.ts). */
  webhooks: WebhookStore;
}

export function settingsFrom(config: Config): EngineSettings {
  return {
    ...DEFAULT_SETTINGS,
    leaseMs: config.LEASE_SECONDS * 1000,
    attemptTimeoutMs: Math.min(config.ATTEMPT_TIMEOUT_SECONDS * 1000, config.LEASE_SECONDS * 1000 - DEFAULT_SETTINGS.settleMarginMs),
    budgetMs: (config.RETRY_BUDGET_HOURS ?? config.MAX_AGE_HOURS) * 3_600_000,
    budgetBySystem: budgetsBySystem(config),
    ttlDays: config.RECORD_TTL_DAYS,
    sweepGraceMs: config.SWEEP_GRACE_SECONDS * 1000,
    reconcileDelayMs: config.RECONCILE_DELAY_SECONDS * 1000,
    indexShards: config.INDEX_SHARDS,
  };
}

export interface Parts {
  store: RecordStore;
  limiter: LimiterStore;
  fences: FenceStore;
  queue: RetryQueue;
  webhooks: WebhookStore;
  dispatcher?: Dispatcher;
  modules?: Map<string, SystemModule>;
  settings?: Partial<EngineSettings>;
  pacing?: Partial<PacingSettings>;
  /** This container's id in the shared limiter (lanes, fences); random when absent. */
  owner?: string;
  log?: Logger;
  metrics?: Metrics;
  clock?: () => number;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export function buildDeps(config: Config, parts: Parts): AppDeps {
  const clock = parts.clock ?? Date.now;
  const modules = parts.modules ?? buildSystems(config, parts.dispatcher ?? makeDispatcher(), clock);
  const log = parts.log ?? createLogger({ service: 'paybridge' });
  return {
    config,
    auth: { apiKeys: config.apiKeys, webhookSecret: config.WEBHOOK_SECRET },
    modules,
    systems: (name) => modules.get(name),
    store: parts.store,
    fences: parts.fences,
    queue: parts.queue,
    webhooks: parts.webhooks,
    pacer: new Pacer(parts.limiter, clock, log, { ...DEFAULT_PACING, ...parts.pacing }, parts.owner),
    settings: { ...settingsFrom(config), ...parts.settings },
    log,
    metrics: parts.metrics ?? createMetrics(),
    clock,
    random: parts.random ?? Math.random,
    sleep: parts.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms))),
  };
}

/** Parameters are re-read after this long, so a renewed credential reaches warm Lambdas (Powertools' maxAge). */
const SECRETS_MAX_AGE_MS = 5 * 60_000;

/**
 * The deployed wiring: DynamoDB, the retry queues this function may use, parameters from SSM (common
 * and the groups of `systems` only). Built at cold start, refreshed with the parameters.
 */
export function awsDeps(opts: { systems?: readonly SystemName[]; env?: Record<string, string | undefined> } = {}): () => Promise<AppDeps> {
  const env = opts.env ?? process.env;
  const systems = opts.systems ?? SYSTEM_NAMES;
  let cached: { deps: AppDeps; at: number; fingerprint: string } | undefined;
  let building: Promise<AppDeps> | undefined;
  const build = async (): Promise<AppDeps> => {
    const resolved = await resolveParameters(env, systems.map((s) => PARAMETER_GROUP[s]));
    const fingerprint = JSON.stringify(resolved);
    if (cached && cached.fingerprint === fingerprint) {
      cached.at = Date.now();
      return cached.deps;
    }
    const config = parseConfig(resolved);
    // The key of the log hashes (shared/log.ts) is a secret too: it comes with the others.
    if (resolved.LOG_HASH_KEY) process.env.LOG_HASH_KEY = resolved.LOG_HASH_KEY;
    const urls = config.RETRY_QUEUE_URLS ?? (config.RETRY_QUEUE_URL ? { '*': config.RETRY_QUEUE_URL } : {});
    const dynamo = makeDynamoClient({ endpoint: config.DYNAMODB_ENDPOINT, region: config.AWS_REGION });
    const previous = cached?.deps;
    const deps = buildDeps(config, {
      store: previous?.store ?? new DynamoRecordStore(dynamo, config.TABLE_NAME, config.INDEX_SHARDS),
      limiter: new DynamoLimiterStore(dynamo, config.TABLE_NAME),
      fences: previous?.fences ?? new DynamoFenceStore(dynamo, config.TABLE_NAME),
      queue: previous?.queue ?? new SqsRetryQueue(new SQSClient({ region: config.AWS_REGION }), urls),
      webhooks: previous?.webhooks ?? new DynamoWebhookStore(dynamo, config.TABLE_NAME),
    });
    // The container keeps one identity in the shared limiter across parameter refreshes.
    if (previous) deps.pacer = previous.pacer;
    cached = { deps, at: Date.now(), fingerprint };
    return deps;
  };
  return async () => {
    if (cached && Date.now() - cached.at < SECRETS_MAX_AGE_MS) return cached.deps;
    building ??= build().finally(() => {
      building = undefined;
    });
    return building;
  };
}
