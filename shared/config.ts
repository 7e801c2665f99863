import * as z from 'zod';
import { CallerConfigError, parseApiKeyEntries, parseWebhookSecrets, type ApiKey } from './http/callers.js';
import { CALLER_NAME } from './http/authorizer.js';
import type { CallerScope } from './http/scopes.js';
import { randomBytes } from 'node:crypto';
import { parseMessageKeys, type MessageKeys } from './queue/port.js';
import { ConfigError } from './systems/types.js';

/**
 * Each schema is built on first use, not at import: every function bundles all of them but uses the
 * common one and its own system's, and a zod schema costs its construction at cold start (issue 23).
 */
function lazily<T>(build: () => T): () => T {
  let built: { value: T } | undefined;
  return () => (built ??= { value: build() }).value;
}

const intIn = (min: number, max: number, dflt: number) => z.coerce.number().int().min(min).max(max).default(dflt);
const optionalUrl = () => z.url().optional();
const optionalText = () => z.string().min(1).optional();
const rps = (dflt: number) => z.coerce.number().positive().max(1000).default(dflt);
const budgetHours = () => z.coerce.number().positive().max(24 * 365).optional();

/**
 * The variables every function reads, parsed at cold start (README, "Configuration"). A bad value here
 * stops the function naming the variable: none of them belongs to one downstream system.
 */
export const commonSchema = lazily(() =>
  z.object({
    PORT: intIn(1, 65535, 3000),
    AWS_REGION: z.string().min(1).default('eu-north-1'),
    TABLE_NAME: z.string().min(3).default('paybridge-records'),
    /** This function's own system's retry queue. */
    RETRY_QUEUE_URL: optionalUrl(),
    /** Every system's retry queue, as a JSON object system → URL (the sweep's). */
    RETRY_QUEUE_URLS: z
      .string()
      .transform((text, ctx) => {
        try {
          const parsed = JSON.parse(text) as unknown;
          if (parsed && typeof parsed === 'object' && !Array.isArray(parsed) && Object.values(parsed).every((v) => typeof v === 'string' && /^https?:\/\//.test(v))) {
            return parsed as Record<string, string>;
          }
        } catch {
          // reported below
        }
        ctx.addIssue({ code: 'custom', message: 'must be a JSON object mapping each system to its queue URL' });
        return z.NEVER;
      })
      .optional(),
    DYNAMODB_ENDPOINT: optionalUrl(),
    /** Set in AWS: parameters are read from SSM Parameter Store under this path, e.g. /paybridge/prod. */
    SECRETS_PARAMETER_PREFIX: z.string().regex(/^\/[\w.\-/]+[^/]$/, 'must be an SSM path such as /paybridge/prod').optional(),
    API_KEYS: z.string().default(''),
    /**
     * HMAC key(s) of the retry queues' messages (issue 20 item 4): one, or several separated by spaces
     * (the first signs, all verify). Required in a deployed stage; locally a random key per process.
     */
    RETRY_MESSAGE_KEY: z.string().optional(),
    /**
     * One Standard Webhooks secret, or several separated by spaces, each optionally `sender=whsec_...`
     * (several senders; several secrets of one sender: rotation, every one verifies).
     */
    WEBHOOK_SECRET: z
      .string()
      .regex(/^\s*([a-z0-9-]+=)?whsec_[A-Za-z0-9+/=]+(\s+([a-z0-9-]+=)?whsec_[A-Za-z0-9+/=]+)*\s*$/, 'must be Standard Webhooks secrets (whsec_ followed by base64, optionally sender=whsec_...), separated by spaces')
      .optional(),
    /** What each named caller may post to (issue 20, item 5): JSON, parsed by parseCallerScopes. */
    CALLER_SCOPES: z.string().optional(),
    LEASE_SECONDS: intIn(10, 900, 90),
    ATTEMPT_TIMEOUT_SECONDS: intIn(2, 600, 20),
    /** Accepted for compatibility; retries are bounded by time (RETRY_BUDGET_HOURS), not by count. */
    MAX_FAILURES: intIn(1, 100, 8),
    /** The retry budget's earlier name. */
    MAX_AGE_HOURS: intIn(1, 24 * 365, 72),
    RETRY_BUDGET_HOURS: budgetHours(),
    RECORD_TTL_DAYS: intIn(1, 3650, 400),
    SWEEP_GRACE_SECONDS: intIn(0, 3600, 30),
    RECONCILE_DELAY_SECONDS: intIn(0, 3600, 5),
    INDEX_SHARDS: intIn(1, 256, 8),
  }),
);

export type CommonConfig = z.infer<ReturnType<typeof commonSchema>>;

const clubTokens = () => z.string().transform((text, ctx) => {
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed) && Object.values(parsed).every((v) => typeof v === 'string' && v !== '')) {
      return parsed as Record<string, string>;
    }
  } catch {
    // reported below
  }
  ctx.addIssue({ code: 'custom', message: 'must be a JSON object mapping ClubId to a non-empty token, e.g. {"4568":"eyJ..."}' });
  return z.NEVER;
});

const nifFirstGeneration = () => ({
  NIF_MEMBERSHIP_BASE_URL: optionalUrl(),
  NIF_MEMBERSHIP_API_VERSION: intIn(1, 99, 1),
  NIF_SUBSCRIPTION_KEY: optionalText(),
  /** JSON object ClubId → that club's token from NIF's portal. */
  NIF_CLUB_TOKENS: clubTokens().optional(),
  NIF_MAX_RPS: rps(10),
});

/**
 * Each system's own variables, parsed the first time the system is used: a bad value there holds that
 * system's payments, naming the variable, and leaves every other system working (issue 10).
 */
const systemSchemaBuilders = {
  cambio: () => z.object({
    CAMBIO_BASE_URL: z.url().default('https://api.openservices.cambio.se'),
    CAMBIO_TOKEN_URL: optionalUrl(),
    CAMBIO_CLIENT_ID: optionalText(),
    CAMBIO_CLIENT_SECRET: optionalText(),
    CAMBIO_SUBSCRIPTION_KEY: optionalText(),
    CAMBIO_MAX_RPS: rps(10),
    CAMBIO_RETRY_BUDGET_HOURS: budgetHours(),
  }),
  'nif-membership': () => z.object({ ...nifFirstGeneration(), NIF_MEMBERSHIP_RETRY_BUDGET_HOURS: budgetHours() }),
  'nif-corporate': () => z.object({ ...nifFirstGeneration(), NIF_CORPORATE_RETRY_BUDGET_HOURS: budgetHours() }),
  nif: () => z.object({
    NIF_ENVIRONMENT: z.enum(['dst', 'prod']).default('dst'),
    NIF_BASE_URL: optionalUrl(),
    NIF_TOKEN_URL: optionalUrl(),
    NIF_CLIENT_ID: optionalText(),
    NIF_CLIENT_SECRET: optionalText(),
    NIF_SUBSCRIPTION_KEY: optionalText(),
    NIF_MAX_RPS: rps(10),
    NIF_RETRY_BUDGET_HOURS: budgetHours(),
  }),
  brp: () => z.object({
    BRP_BASE_URL: optionalUrl(),
    BRP_API_KEY: optionalText(),
    BRP_USERNAME: optionalText(),
    BRP_PASSWORD: optionalText(),
    /** Sales per second (each sale is several calls: order, rows, read, receipt, read). */
    BRP_MAX_RPS: rps(2),
    BRP_RETRY_BUDGET_HOURS: budgetHours(),
  }),
  kontantanalys: () => z.object({
    KONTANTANALYS_BASE_URL: optionalUrl(),
    KONTANTANALYS_USERNAME: optionalText(),
    KONTANTANALYS_PASSWORD: optionalText(),
    KONTANTANALYS_MAX_RPS: rps(5),
    /** Providers closer than this (SWEREF 99 TM metres) to ours count as the same place. */
    KONTANTANALYS_MATCH_DISTANCE_M: z.coerce.number().min(0).max(10_000).default(25),
    /** The account has Tillväxtverket's extended permission for historic years. */
    KONTANTANALYS_EXTENDED_PERMISSION: z.enum(['true', 'false']).default('false').transform((v) => v === 'true'),
    KONTANTANALYS_RETRY_BUDGET_HOURS: budgetHours(),
  }),
} as const;

export type SystemName = keyof typeof systemSchemaBuilders;
export const SYSTEM_NAMES = Object.keys(systemSchemaBuilders) as SystemName[];
type SystemSchema<S extends SystemName> = ReturnType<(typeof systemSchemaBuilders)[S]>;
export type SystemConfig<S extends SystemName> = z.infer<SystemSchema<S>>;

const builtSystemSchemas = new Map<SystemName, unknown>();

/** A system's own schema, built the first time it is asked for. */
export function systemSchema<S extends SystemName>(name: S): SystemSchema<S> {
  let schema = builtSystemSchemas.get(name);
  if (!schema) {
    schema = systemSchemaBuilders[name]();
    builtSystemSchemas.set(name, schema);
  }
  return schema as SystemSchema<S>;
}

/** The prefix of a system's own variables (`<PREFIX>_RETRY_BUDGET_HOURS`). */
export const SYSTEM_PREFIX: Record<SystemName, string> = {
  cambio: 'CAMBIO',
  'nif-membership': 'NIF_MEMBERSHIP',
  'nif-corporate': 'NIF_CORPORATE',
  nif: 'NIF',
  brp: 'BRP',
  kontantanalys: 'KONTANTANALYS',
};

/**
 * SSM Parameter Store groups (`/paybridge/<stage>/<group>/<NAME>`): the three NIF systems share one because
 * they share credentials (NIF_SUBSCRIPTION_KEY; the first generation's club tokens serve both its routes).
 * Read here at run time and by shared/aws/stack.ts for each function's parameters and IAM paths;
 * `satisfies` makes a system missing here a compile error.
 */
export const PARAMETER_GROUP = {
  cambio: 'cambio',
  'nif-membership': 'nif',
  'nif-corporate': 'nif',
  nif: 'nif',
  brp: 'brp',
  kontantanalys: 'kontantanalys',
} as const satisfies Record<SystemName, string>;

export interface Config extends CommonConfig {
  /** API_KEYS, each key with the caller it names (shared/http/callers.ts). */
  apiKeys: ApiKey[];
  /** CALLER_SCOPES by caller name; a caller not in it may use everything. */
  callerScopes: ReadonlyMap<string, CallerScope>;
  /** RETRY_MESSAGE_KEY, parsed (shared/queue/port.ts). */
  messageKeys: MessageKeys;
  /** The environment the configuration was parsed from (cleaned of empty values). */
  env: Readonly<Record<string, string>>;
  /** The system's own variables; throws a ConfigError naming each bad one. Parsed once, on first use. */
  system<S extends SystemName>(name: S): SystemConfig<S>;
}

export class ConfigurationError extends Error {
  override readonly name = 'ConfigurationError';
}

function problems(error: z.ZodError): { text: string; names: string[] } {
  return {
    text: error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '),
    names: [...new Set(error.issues.map((i) => String(i.path[0])))],
  };
}

/** Shorter keys could be found by trying them: the hashes they key stand for personal ids. */
const MIN_LOG_HASH_KEY_LENGTH = 16;

/**
 * LOG_HASH_KEY keys the hashes that stand for personal ids in logs (shared/log.ts). A deployed
 * function (SECRETS_PARAMETER_PREFIX set) refuses to start without it: otherwise each container would
 * hash with its own random key and the logs of one payment could no longer be followed across them.
 * The deploy itself is refused too (serverless.yml's LogHashKeyParameter); this covers a parameter
 * deleted or unreadable after the deploy.
 */
function checkLogHashKey(env: Record<string, string>): void {
  const key = env.LOG_HASH_KEY;
  if (key === undefined && env.SECRETS_PARAMETER_PREFIX) {
    throw new ConfigurationError(
      `invalid configuration: LOG_HASH_KEY is required in a deployed stage and did not arrive: create ${env.SECRETS_PARAMETER_PREFIX}/common/LOG_HASH_KEY (SecureString, e.g. openssl rand -hex 32)`,
    );
  }
  if (key !== undefined && key.length < MIN_LOG_HASH_KEY_LENGTH) {
    throw new ConfigurationError(`invalid configuration: LOG_HASH_KEY must be at least ${MIN_LOG_HASH_KEY_LENGTH} characters (e.g. openssl rand -hex 32)`);
  }
}

// Built only when CALLER_SCOPES is set (most stages set none).
const callerScopeSchema = lazily(() =>
  z.strictObject({
    systems: z.array(z.enum(SYSTEM_NAMES as [SystemName, ...SystemName[]])).optional(),
    nifClubs: z.array(z.union([z.string().regex(/^[1-9]\d{0,11}$/, 'must be a ClubId (a positive whole number)'), z.number().int().positive().max(999_999_999_999)]).transform(String)).optional(),
    kontantanalysKeys: z
      .array(z.string().regex(/^(\*|[\w.\-:@]{1,100}\*?)$/, 'must be an externalId (letters, digits, . - _ : @), or a prefix of one followed by *'))
      .optional(),
  }),
);

/**
 * CALLER_SCOPES: a JSON object caller name → `{systems?, nifClubs?, kontantanalysKeys?}` (shared/http/scopes.ts).
 * A name that no API_KEYS or WEBHOOK_SECRET entry gives is refused: a misspelt name would leave the real
 * caller without its scope, that is, allowed everything.
 */
export function parseCallerScopes(text: string | undefined, callers: ReadonlySet<string>): Map<string, CallerScope> {
  const scopes = new Map<string, CallerScope>();
  if (text === undefined) return scopes;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new CallerConfigError('CALLER_SCOPES: must be a JSON object mapping a caller name to its scope, e.g. {"pos":{"systems":["nif-membership"],"nifClubs":["4568"]}}');
  }
  for (const [name, value] of Object.entries(parsed)) {
    if (!CALLER_NAME.test(name) || !callers.has(name)) {
      throw new CallerConfigError(`CALLER_SCOPES: names caller "${name.slice(0, 40)}", which no API_KEYS or WEBHOOK_SECRET entry names (name=key, sender=whsec_...)`);
    }
    const scope = callerScopeSchema().safeParse(value);
    if (!scope.success) {
      const issue = scope.error.issues[0];
      throw new CallerConfigError(`CALLER_SCOPES: ${[name, ...(issue?.path ?? [])].join('.')}: ${issue?.message ?? 'is not a scope'}`);
    }
    const { systems, nifClubs, kontantanalysKeys } = scope.data;
    scopes.set(name, { ...(systems ? { systems } : {}), ...(nifClubs ? { nifClubs } : {}), ...(kontantanalysKeys ? { kontantanalysKeys } : {}) });
  }
  return scopes;
}

/**
 * Without RETRY_MESSAGE_KEY outside AWS: one random key for this process, so every part of one process
 * (the local stack's routes, workers and sweep, a test's deps) agrees. The local queue lives in the
 * process, so its messages need nothing longer-lived; `npm start` hands the key it uses to
 * `serverless invoke local` (shared/local/invoke-env.ts).
 */
const PROCESS_MESSAGE_KEY = randomBytes(32).toString('hex');

/**
 * A deployed function refuses to start without RETRY_MESSAGE_KEY, naming the parameter: without it a
 * worker could not tell our messages from made-up ones, and a sender could not sign.
 */
function messageKeysOf(env: Record<string, string>): MessageKeys {
  const text = env.RETRY_MESSAGE_KEY;
  if (text === undefined) {
    if (env.SECRETS_PARAMETER_PREFIX) {
      throw new ConfigurationError(
        `invalid configuration: RETRY_MESSAGE_KEY is required in a deployed stage and did not arrive: create ${env.SECRETS_PARAMETER_PREFIX}/common/RETRY_MESSAGE_KEY (SecureString, e.g. openssl rand -hex 32)`,
      );
    }
    return { sign: PROCESS_MESSAGE_KEY, verify: [PROCESS_MESSAGE_KEY] };
  }
  try {
    return parseMessageKeys(text);
  } catch (err) {
    throw new ConfigurationError(`invalid configuration: ${(err as Error).message}`);
  }
}

export function parseConfig(env: Record<string, string | undefined>): Config {
  const cleaned: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== '') cleaned[k] = v;
  const parsed = commonSchema().safeParse(cleaned);
  if (!parsed.success) throw new ConfigurationError(`invalid configuration: ${problems(parsed.error).text}`);
  checkLogHashKey(cleaned);
  const messageKeys = messageKeysOf(cleaned);
  let apiKeys: ApiKey[];
  let callerScopes: Map<string, CallerScope>;
  try {
    apiKeys = parseApiKeyEntries(parsed.data.API_KEYS);
    // Parsed here also to fail at start: authentication parses the same text (shared/http/auth.ts).
    const senders = parseWebhookSecrets(parsed.data.WEBHOOK_SECRET).map((s) => s.sender);
    callerScopes = parseCallerScopes(parsed.data.CALLER_SCOPES, new Set([...apiKeys.map((k) => k.caller), ...senders]));
  } catch (err) {
    if (err instanceof CallerConfigError) throw new ConfigurationError(`invalid configuration: ${err.message}`);
    throw err;
  }
  const cache = new Map<SystemName, { value: unknown } | { error: ConfigError }>();
  return {
    ...parsed.data,
    apiKeys,
    callerScopes,
    messageKeys,
    env: cleaned,
    system<S extends SystemName>(name: S): SystemConfig<S> {
      let got = cache.get(name);
      if (!got) {
        const r = (systemSchema(name) as z.ZodType).safeParse(cleaned);
        if (r.success) got = { value: r.data };
        else {
          const p = problems(r.error);
          got = { error: new ConfigError(`${name} configuration is invalid: ${p.text}`, p.names) };
        }
        cache.set(name, got);
      }
      if ('error' in got) throw got.error;
      return got.value as SystemConfig<S>;
    },
  };
}

/** Per-system retry budgets in milliseconds, for the systems whose configuration gives one. */
export function budgetsBySystem(config: Config): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of SYSTEM_NAMES) {
    try {
      const hours = (config.system(name) as Record<string, unknown>)[`${SYSTEM_PREFIX[name]}_RETRY_BUDGET_HOURS`];
      if (typeof hours === 'number') out[name] = hours * 3_600_000;
    } catch {
      // An invalid system configuration holds that system's payments; its budget does not matter then.
    }
  }
  return out;
}
