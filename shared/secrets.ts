import { GetParametersByPathCommand, SSMClient } from '@aws-sdk/client-ssm';

/**
 * In AWS, fills the environment from SSM Parameter Store: `<prefix>/common/<NAME>` (API keys, webhook
 * secrets, the log hash key) and `<prefix>/<group>/<NAME>` for each group this function serves, so a
 * function reads only its own system's secrets (issue 12). A variable already set in the environment
 * wins, so a stage can still override one for a test.
 */
export async function resolveParameters(
  env: Record<string, string | undefined>,
  groups: readonly string[],
  ssm?: SSMClient,
): Promise<Record<string, string | undefined>> {
  const prefix = env.SECRETS_PARAMETER_PREFIX;
  if (!prefix) return env;
  const client = ssm ?? new SSMClient({ region: env.AWS_REGION ?? 'eu-north-1' });
  const filled: Record<string, string | undefined> = { ...env };
  for (const group of ['common', ...new Set(groups)]) {
    const path = `${prefix}/${group}`;
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
