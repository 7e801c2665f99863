import pLimit from 'p-limit';
import { budgetsBySystem, PARAMETER_GROUP, parseConfig, type Config } from './config.js';
import type { EngineDeps } from './core/context.js';
import { DEFAULT_SETTINGS, type EngineSettings } from './core/lifecycle.js';
import { Pacer } from './core/pacer.js';
import { DEFAULT_PACING, type PacingSettings } from './core/pacing.js';
import type { AuthSettings } from './http/auth.js';
import { createLogger, type Logger } from './log.js';
import { createMetrics, type Metrics } from './metrics.js';
import { NO_QUEUE, type RetryQueue } from './queue/port.js';
import { resolveParameters } from './secrets.js';
import { NO_TABLE, type FenceStore, type LimiterStore, type RecordStore, type WebhookStore } from './store/port.js';
import type { DescriptionFactory, ModuleFactory, SystemDescription, SystemModule } from './systems/types.js';

/** Everything a handler needs, injected so tests and the local stack pass their own parts. */
export interface AppDeps extends EngineDeps {
  config: Config;
  auth: AuthSettings;
  /**
   * Every system this function knows, by name (the status route and the sweep list them): the modules of
   * those it posts to, the descriptions of those it only reports on.
   */
  modules: Map<string, SystemDescription>;
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
  webhooks: WebhookStore;
  queue: RetryQueue;
  /** The systems this function posts to, by name. */
  modules?: Map<string, SystemModule>;
  /** The systems it only reports on (the status route, the sweep), by name. */
  descriptions?: Map<string, SystemDescription>;
  settings?: Partial<EngineSettings>;
  pacing?: Partial<PacingSettings>;
  /** This container's id in the shared limiter (lanes, fences); random when absent. */
  owner?: string;
  /** This container runs a retry worker besides its routes (the local process): its lane serves both. */
  lanesServeWorkers?: boolean;
  log?: Logger;
  metrics?: Metrics;
  clock?: () => number;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export function buildDeps(config: Config, parts: Parts): AppDeps {
  const clock = parts.clock ?? Date.now;
  const modules = parts.modules ?? new Map<string, SystemModule>();
  const descriptions = parts.descriptions ?? new Map<string, SystemDescription>();
  const log = parts.log ?? createLogger({ service: 'paybridge' });
  const settings = { ...settingsFrom(config), ...parts.settings };
  return {
    config,
    auth: { apiKeys: config.apiKeys, webhookSecret: config.WEBHOOK_SECRET, scopes: config.callerScopes },
    modules: new Map<string, SystemDescription>([...descriptions, ...modules]),
    // A system this function only reports on is looked up as its description. Only the sweep does that
    // through the engine, and the sweep strands, requeues and probes: it reads a module's name, ambiguity,
    // maxPerSecond and afterSend, never its client (shared/core/recovery.ts). test/integration/sweep-descriptions.test.ts
    // strands under every policy over descriptions that refuse any other member, so a sweep that began to
    // post would fail there.
    systems: (name) => modules.get(name) ?? (descriptions.get(name) as SystemModule | undefined),
    store: parts.store,
    fences: parts.fences,
    queue: parts.queue,
    messageKeys: config.messageKeys,
    webhooks: parts.webhooks,
    pacer: new Pacer(parts.limiter, clock, log, { ...DEFAULT_PACING, ...parts.pacing }, parts.owner, parts.lanesServeWorkers),
    settings,
    queuedClaims: { turn: pLimit(Math.max(1, settings.queuedClaimsAtOnce)), inline: 0 },
    log,
    metrics: parts.metrics ?? createMetrics(),
    clock,
    random: parts.random ?? Math.random,
    sleep: parts.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms))),
  };
}

/** The record table's adapters. */
export interface TableParts {
  store: RecordStore;
  limiter: LimiterStore;
  fences: FenceStore;
  webhooks: WebhookStore;
}

/**
 * What one deployed function is made of (issue 14). Each handler names its own parts, so its bundle holds
 * those and nothing else: esbuild follows imports, and a part a handler does not pass is never imported.
 */
export interface AwsWiring {
  /** The systems this function posts to (their clients are in its bundle); their SSM groups are read. */
  modules?: readonly ModuleFactory[];
  /** The systems it reports on without posting (the status route, the sweep): descriptions, no client. */
  descriptions?: readonly DescriptionFactory[];
  /** The record table's adapters (shared/store/dynamo.ts); a function whose role grants no table leaves it out. */
  table?: (config: Config) => TableParts;
  /** The retry queue's adapter (shared/queue/sqs.ts); a function that sends no message leaves it out. */
  queue?: (config: Config) => RetryQueue;
  env?: Record<string, string | undefined>;
}

/**
 * The deployed wiring: the parts a handler names, parameters from SSM (common and the groups of the
 * systems it posts to only), fetched at the first invocation, not at import. Rebuilt when a refreshed
 * parameter changed (a renewed token reaches the clients); the table, the queue and the pacer stay.
 */
export function awsDeps(wiring: AwsWiring = {}): () => Promise<AppDeps> {
  const env = wiring.env ?? process.env;
  const factories = wiring.modules ?? [];
  const groups = [...new Set(factories.map((f) => PARAMETER_GROUP[f.system]))];
  let cached: { deps: AppDeps; fingerprint: string } | undefined;
  let building: Promise<AppDeps> | undefined;
  // Neither the table nor the queue depends on a secret: one of each per container (the system clients share
  // the process's HTTP pool the same way: shared/systems/http.ts).
  let table: TableParts | undefined;
  let queue: RetryQueue | undefined;
  let queueKey: string | undefined;
  // The LOG_HASH_KEY this wiring wrote into process.env (below): on the next refresh it must not count as
  // an override of the parameter, or a rotated key would never reach a warm container.
  let wroteHashKey: string | undefined;
  const build = async (): Promise<AppDeps> => {
    const own = wroteHashKey !== undefined && env.LOG_HASH_KEY === wroteHashKey;
    const resolved = await resolveParameters(own ? { ...env, LOG_HASH_KEY: undefined } : env, groups);
    // In key order: writing LOG_HASH_KEY into process.env below must not look like a change next time.
    const fingerprint = JSON.stringify(Object.entries(resolved).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    if (cached && cached.fingerprint === fingerprint) return cached.deps;
    const config = parseConfig(resolved);
    // The key of the log hashes (shared/log.ts) is a secret too: it comes with the others.
    if (resolved.LOG_HASH_KEY) {
      process.env.LOG_HASH_KEY = resolved.LOG_HASH_KEY;
      if (env === process.env) wroteHashKey = resolved.LOG_HASH_KEY;
    }
    table ??= wiring.table?.(config) ?? NO_TABLE;
    // Rebuilt when RETRY_MESSAGE_KEY changed: a rotated key must reach what this container signs with.
    if (!queue || queueKey !== config.messageKeys.sign) queue = wiring.queue?.(config) ?? NO_QUEUE;
    queueKey = config.messageKeys.sign;
    const clock = Date.now;
    const deps = buildDeps(config, {
      ...table,
      queue,
      modules: new Map(factories.map((make) => [make.system as string, make(config, undefined, clock)])),
      descriptions: new Map((wiring.descriptions ?? []).map((describe) => [describe.system as string, describe(config)])),
      clock,
    });
    // The container keeps one identity in the shared limiter across parameter refreshes.
    if (cached) deps.pacer = cached.deps.pacer;
    cached = { deps, fingerprint };
    return deps;
  };
  // Asked on every invocation: Powertools Parameters answers from its cache until a path is five minutes
  // old (shared/secrets.ts), and the deps are rebuilt only when what it answers has changed.
  return async () => {
    building ??= build().finally(() => {
      building = undefined;
    });
    return building;
  };
}
