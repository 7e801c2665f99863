import { SQSClient } from '@aws-sdk/client-sqs';
import type { Dispatcher } from 'undici';
import { parseConfig, resolveSecrets, type Config } from './config.js';
import type { EngineDeps } from './core/engine.js';
import { DEFAULT_SETTINGS, type EngineSettings } from './core/lifecycle.js';
import type { AuthSettings } from './http/auth.js';
import { createLogger, type Logger } from './log.js';
import { createMetrics, type Metrics } from './metrics.js';
import type { RetryQueue } from './queue/port.js';
import { SqsRetryQueue } from './queue/sqs.js';
import { DynamoRateLimiter, DynamoRecordStore, makeDynamoClient } from './store/dynamo.js';
import type { RateLimiter, RecordStore } from './store/port.js';
import { makeDispatcher } from './systems/http.js';
import { buildSystems } from './systems/registry.js';
import type { SystemModule } from './systems/types.js';

/** Everything a handler needs, injected so tests and the local stack pass their own parts. */
export interface AppDeps extends EngineDeps {
  config: Config;
  auth: AuthSettings;
  /** Every system module by name (the status route lists them). */
  modules: Map<string, SystemModule>;
}

export function settingsFrom(config: Config): EngineSettings {
  return {
    ...DEFAULT_SETTINGS,
    leaseMs: config.LEASE_SECONDS * 1000,
    maxFailures: config.MAX_FAILURES,
    maxAgeMs: config.MAX_AGE_HOURS * 3_600_000,
    ttlDays: config.RECORD_TTL_DAYS,
    sweepGraceMs: config.SWEEP_GRACE_SECONDS * 1000,
    reconcileDelayMs: config.RECONCILE_DELAY_SECONDS * 1000,
  };
}

export interface Parts {
  store: RecordStore;
  limiter: RateLimiter;
  queue: RetryQueue;
  dispatcher?: Dispatcher;
  modules?: Map<string, SystemModule>;
  settings?: Partial<EngineSettings>;
  log?: Logger;
  metrics?: Metrics;
  clock?: () => number;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export function buildDeps(config: Config, parts: Parts): AppDeps {
  const clock = parts.clock ?? Date.now;
  const modules = parts.modules ?? buildSystems(config, parts.dispatcher ?? makeDispatcher(), clock);
  return {
    config,
    auth: { apiKeys: config.apiKeys, webhookSecret: config.WEBHOOK_SECRET },
    modules,
    systems: (name) => modules.get(name),
    store: parts.store,
    limiter: parts.limiter,
    queue: parts.queue,
    settings: { ...settingsFrom(config), ...parts.settings },
    log: parts.log ?? createLogger({ service: 'paybridge' }),
    metrics: parts.metrics ?? createMetrics(),
    clock,
    random: parts.random ?? Math.random,
    sleep: parts.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms))),
  };
}

/** Secrets are re-read after this long, so a renewed credential reaches warm Lambdas (Powertools' maxAge). */
const SECRETS_MAX_AGE_MS = 5 * 60_000;

/** The deployed wiring: DynamoDB, SQS, secrets from SSM. Built at cold start, refreshed with the secrets. */
export function awsDeps(env: Record<string, string | undefined> = process.env): () => Promise<AppDeps> {
  let cached: { deps: AppDeps; at: number; fingerprint: string } | undefined;
  let building: Promise<AppDeps> | undefined;
  const build = async (): Promise<AppDeps> => {
    const resolved = await resolveSecrets(env);
    const fingerprint = JSON.stringify(resolved);
    if (cached && cached.fingerprint === fingerprint) {
      cached.at = Date.now();
      return cached.deps;
    }
    const config = parseConfig(resolved);
    // The key of the log hashes (shared/log.ts) is a secret too: it comes with the others.
    if (resolved.LOG_HASH_KEY) process.env.LOG_HASH_KEY = resolved.LOG_HASH_KEY;
    if (!config.RETRY_QUEUE_URL) throw new Error('invalid configuration: RETRY_QUEUE_URL is required in AWS');
    const dynamo = makeDynamoClient({ endpoint: config.DYNAMODB_ENDPOINT, region: config.AWS_REGION });
    const deps = buildDeps(config, {
      store: cached?.deps.store ?? new DynamoRecordStore(dynamo, config.TABLE_NAME),
      limiter: cached?.deps.limiter ?? new DynamoRateLimiter(dynamo, config.TABLE_NAME),
      queue: cached?.deps.queue ?? new SqsRetryQueue(new SQSClient({ region: config.AWS_REGION }), config.RETRY_QUEUE_URL),
    });
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
