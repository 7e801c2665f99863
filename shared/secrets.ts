import { GetParametersByPathCommand, SSMClient } from '@aws-sdk/client-ssm';

/**
 * In AWS, fills the environment from SSM Parameter Store: `<prefix>/common/<NAME>` (API keys, webhook
 * secrets, the log hash key) and `<prefix>/<group>/<NAME>` for each group this function serves (or
 * exactly the paths in SECRETS_PARAMETER_PATHS, which serverless.yml sets beside the role that allows
 * them), so a function reads only its own system's secrets (issue 12). A variable already set in the
 * environment wins, so a stage can still override one for a test.
 */
export async function resolveParameters(
  env: Record<string, string | undefined>,
  groups: readonly string[],
  ssm?: SSMClient,
): Promise<Record<string, string | undefined>> {
  const prefix = env.SECRETS_PARAMETER_PREFIX;
  if (!prefix) return env;
  // serverless.yml states each function's paths beside the role that allows exactly those.
  const paths = env.SECRETS_PARAMETER_PATHS
    ? env.SECRETS_PARAMETER_PATHS.split(',').map((p) => p.trim()).filter(Boolean)
    : ['common', ...new Set(groups)].map((group) => `${prefix}/${group}`);
  const client = ssm ?? new SSMClient({ region: env.AWS_REGION ?? 'eu-north-1' });
  const filled: Record<string, string | undefined> = { ...env };
  for (const path of paths) {
    let token: string | undefined;
    // A path holds a few dozen parameters at most; the bound only guards against a runaway listing.
    for (let page = 0; page < 20; page++) {
      const out = await client.send(new GetParametersByPathCommand({ Path: path, WithDecryption: true, Recursive: false, NextToken: token }));
      for (const p of out.Parameters ?? []) {
        const name = p.Name?.slice(path.length + 1);
        if (name && p.Value !== undefined && !env[name]) filled[name] = p.Value;
      }
      token = out.NextToken;
      if (!token) break;
    }
  }
  return filled;
}
