import { GetParametersCommand, SSMClient } from '@aws-sdk/client-ssm';
import { z } from 'zod';

const intIn = (min: number, max: number, dflt: number) => z.coerce.number().int().min(min).max(max).default(dflt);
const optionalUrl = z.url().optional();
const optionalText = z.string().min(1).optional();

/**
 * Every environment variable paybridge reads, parsed once at cold start (README, "Configuration").
 * A bad value fails the start naming the variable; a system's own missing credentials hold that
 * system's payments instead (they are checked when it is called).
 */
export const envSchema = z.object({
  PORT: intIn(1, 65535, 3000),
  AWS_REGION: z.string().min(1).default('eu-north-1'),
  TABLE_NAME: z.string().min(3).default('paybridge-records'),
  RETRY_QUEUE_URL: optionalUrl,
  DYNAMODB_ENDPOINT: optionalUrl,
  /** Set in AWS: secrets are read from SSM Parameter Store under this path, e.g. /paybridge/prod. */
  SECRETS_PARAMETER_PREFIX: z.string().regex(/^\/[\w.\-/]+[^/]$/, 'must be an SSM path such as /paybridge/prod').optional(),
  API_KEYS: z.string().default(''),
  WEBHOOK_SECRET: z.string().regex(/^whsec_[A-Za-z0-9+/=]+$/, 'must be a Standard Webhooks secret (whsec_ followed by base64)').optional(),
  LEASE_SECONDS: intIn(10, 900, 60),
  MAX_FAILURES: intIn(1, 100, 8),
  MAX_AGE_HOURS: intIn(1, 24 * 30, 72),
  RECORD_TTL_DAYS: intIn(1, 3650, 400),
  SWEEP_GRACE_SECONDS: intIn(0, 3600, 120),
  RECONCILE_DELAY_SECONDS: intIn(0, 3600, 5),
  CAMBIO_BASE_URL: z.url().default('https://api.openservices.cambio.se'),
  CAMBIO_TOKEN_URL: optionalUrl,
  CAMBIO_CLIENT_ID: optionalText,
  CAMBIO_CLIENT_SECRET: optionalText,
  CAMBIO_SUBSCRIPTION_KEY: optionalText,
  CAMBIO_MAX_RPS: z.coerce.number().positive().max(1000).default(10),
  NIF_MEMBERSHIP_BASE_URL: optionalUrl,
  NIF_MEMBERSHIP_API_VERSION: intIn(1, 99, 1),
  NIF_SUBSCRIPTION_KEY: optionalText,
  /** JSON object ClubId → that club's token from NIF's portal. */
  NIF_CLUB_TOKENS: z
    .string()
    .transform((text, ctx) => {
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
    })
    .optional(),
  NIF_ENVIRONMENT: z.enum(['dst', 'prod']).default('dst'),
  NIF_BASE_URL: optionalUrl,
  NIF_TOKEN_URL: optionalUrl,
  NIF_CLIENT_ID: optionalText,
  NIF_CLIENT_SECRET: optionalText,
  NIF_MAX_RPS: z.coerce.number().positive().max(1000).default(10),
  BRP_BASE_URL: optionalUrl,
  BRP_API_KEY: optionalText,
  BRP_USERNAME: optionalText,
  BRP_PASSWORD: optionalText,
  /** Sales per second (each sale is several calls: order, rows, read, receipt, read). */
  BRP_MAX_RPS: z.coerce.number().positive().max(1000).default(2),
  KONTANTANALYS_BASE_URL: optionalUrl,
  KONTANTANALYS_USERNAME: optionalText,
  KONTANTANALYS_PASSWORD: optionalText,
  KONTANTANALYS_MAX_RPS: z.coerce.number().positive().max(1000).default(5),
  /** Providers closer than this (SWEREF 99 TM metres) to ours count as the same place. */
  KONTANTANALYS_MATCH_DISTANCE_M: z.coerce.number().min(0).max(10_000).default(25),
  /** The account has Tillväxtverket's extended permission for historic years. */
  KONTANTANALYS_EXTENDED_PERMISSION: z.enum(['true', 'false']).default('false').transform((v) => v === 'true'),
});

export type Config = z.infer<typeof envSchema> & { apiKeys: string[] };

/**
 * Variables read from SSM Parameter Store in AWS (`<SECRETS_PARAMETER_PREFIX>/<NAME>`): every
 * secret (as SecureString) and each system's endpoints, so a stage is configured without a redeploy
 * and no secret sits in a Lambda's plain environment.
 */
export const PARAMETER_VARIABLES = [
  'API_KEYS',
  'WEBHOOK_SECRET',
  'CAMBIO_BASE_URL',
  'CAMBIO_TOKEN_URL',
  'CAMBIO_CLIENT_ID',
  'CAMBIO_CLIENT_SECRET',
  'CAMBIO_SUBSCRIPTION_KEY',
  'CAMBIO_MAX_RPS',
  'NIF_MEMBERSHIP_BASE_URL',
  'NIF_SUBSCRIPTION_KEY',
  'NIF_CLUB_TOKENS',
  'NIF_BASE_URL',
  'NIF_TOKEN_URL',
  'NIF_CLIENT_ID',
  'NIF_CLIENT_SECRET',
  'NIF_MAX_RPS',
  'BRP_BASE_URL',
  'BRP_API_KEY',
  'BRP_USERNAME',
  'BRP_PASSWORD',
  'BRP_MAX_RPS',
  'KONTANTANALYS_BASE_URL',
  'KONTANTANALYS_USERNAME',
  'KONTANTANALYS_PASSWORD',
  'KONTANTANALYS_MAX_RPS',
  'LOG_HASH_KEY',
] as const;

export class ConfigurationError extends Error {
  override readonly name = 'ConfigurationError';
}

export function parseConfig(env: Record<string, string | undefined>): Config {
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = envSchema.safeParse(cleaned);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new ConfigurationError(`invalid configuration: ${problems}`);
  }
  const apiKeys = parsed.data.API_KEYS.split(',').map((k) => k.trim()).filter(Boolean);
  return { ...parsed.data, apiKeys };
}

/**
 * In AWS, fills the secret variables from SSM (`<prefix>/<NAME>`, decrypted). A variable already
 * set in the environment wins, so a stage can still override one for a test.
 */
export async function resolveSecrets(env: Record<string, string | undefined>, ssm?: SSMClient): Promise<Record<string, string | undefined>> {
  const prefix = env.SECRETS_PARAMETER_PREFIX;
  if (!prefix) return env;
  const wanted = PARAMETER_VARIABLES.filter((name) => !env[name]);
  if (wanted.length === 0) return env;
  const client = ssm ?? new SSMClient({ region: env.AWS_REGION ?? 'eu-north-1' });
  const filled: Record<string, string | undefined> = { ...env };
  // GetParameters takes at most 10 names; a parameter that does not exist is simply not returned.
  for (let i = 0; i < wanted.length; i += 10) {
    const names = wanted.slice(i, i + 10).map((n) => `${prefix}/${n}`);
    const out = await client.send(new GetParametersCommand({ Names: names, WithDecryption: true }));
    for (const p of out.Parameters ?? []) {
      const name = p.Name?.slice(prefix.length + 1);
      if (name && p.Value !== undefined) filled[name] = p.Value;
    }
  }
  return filled;
}
