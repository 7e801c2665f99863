import { SSMProvider } from '@aws-lambda-powertools/parameters/ssm';
import { SSMClient } from '@aws-sdk/client-ssm';
import { observed } from './aws/observe.js';

/**
 * How long a parameter is trusted before it is read again: a renewed credential (a NIF club token, a new
 * API key) reaches warm Lambdas within five minutes, without a deploy (README, Configuration).
 */
export const PARAMETERS_MAX_AGE_SECONDS = 300;

let provider: SSMProvider | undefined;

/**
 * In AWS, fills the environment from SSM Parameter Store: `<prefix>/common/<NAME>` (API keys, webhook
 * secrets, the log hash key) and `<prefix>/<group>/<NAME>` for each group this function serves (or
 * exactly the paths in SECRETS_PARAMETER_PATHS, which serverless.yml sets beside the role that allows
 * them), so a function reads only its own system's secrets (issue 12). A variable already set in the
 * environment wins, so a stage can still override one for a test.
 *
 * Powertools Parameters reads each path (decrypted, not recursive, every page) and caches it for
 * PARAMETERS_MAX_AGE_SECONDS: calling this on every invocation costs nothing until a path is due again.
 * Without SECRETS_PARAMETER_PREFIX (locally, in tests) it asks SSM nothing.
 */
export async function resolveParameters(env: Record<string, string | undefined>, groups: readonly string[], ssm?: SSMProvider): Promise<Record<string, string | undefined>> {
  const prefix = env.SECRETS_PARAMETER_PREFIX;
  if (!prefix) return env;
  // serverless.yml states each function's paths beside the role that allows exactly those.
  const paths = env.SECRETS_PARAMETER_PATHS
    ? env.SECRETS_PARAMETER_PATHS.split(',').map((p) => p.trim()).filter(Boolean)
    : ['common', ...new Set(groups)].map((group) => `${prefix}/${group}`);
  // One provider per process, so its cache outlives each invocation.
  // Our own client, so its calls can be compared with the function's IAM role in a test (shared/aws/observe.ts).
  const source = ssm ?? (provider ??= new SSMProvider({ awsSdkV3Client: observed(new SSMClient({ region: env.AWS_REGION ?? 'eu-north-1' }), 'ssm') }));
  const filled: Record<string, string | undefined> = { ...env };
  for (const path of paths) {
    const values = (await source.getMultiple(path, { decrypt: true, recursive: false, maxAge: PARAMETERS_MAX_AGE_SECONDS })) ?? {};
    for (const [name, value] of Object.entries(values)) if (typeof value === 'string' && !env[name]) filled[name] = value;
  }
  return filled;
}
