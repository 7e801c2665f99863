import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

/** The files esbuild puts in a handler's bundle, as serverless-esbuild would build it. */
async function inputs(entry: string): Promise<string[]> {
  const out = await build({ entryPoints: [entry], bundle: true, write: false, metafile: true, platform: 'node', format: 'esm', target: 'node20', logLevel: 'silent', outdir: 'unused' });
  return Object.keys(out.metafile.inputs);
}

const packageOf = (file: string) => file.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/)?.[1];

describe('handler bundles', () => {
  it('the authorizer bundles its decision, the logger and the SSM client, nothing of the application', async () => {
    const files = await inputs('functions/authorize.ts');
    expect(files.filter((f) => !f.includes('node_modules')).sort()).toEqual(['functions/authorize.ts', 'shared/http/authorizer.ts', 'shared/log.ts']);
    const packages = new Set(files.map(packageOf).filter(Boolean));
    expect(packages.has('@aws-sdk/client-ssm')).toBe(true);
    for (const unwanted of ['@middy/core', 'zod', 'undici', 'standardwebhooks', '@aws-sdk/client-dynamodb', '@aws-sdk/client-sqs']) expect(packages.has(unwanted), unwanted).toBe(false);
  });

  it('the OpenAPI handler reads the route table, not the other handlers (no import circle through shared/local/routes.ts)', async () => {
    const files = await inputs('functions/openapi.ts');
    expect(files).toContain('shared/http/routes.ts');
    expect(files.filter((f) => f.startsWith('functions/'))).toEqual(['functions/openapi.ts']);
    expect(files.some((f) => f.startsWith('shared/local/'))).toBe(false);
  }, 30_000);
});
