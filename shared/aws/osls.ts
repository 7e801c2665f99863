import type { SystemName } from '../http/routes.js';
import { invokeLocalHooks, isInvokeLocal, type InvokeServerless } from './invoke-local.js';
import { bindStage, slsApiKeys, slsFunctions, slsResources, slsUsagePlans, validateConfig, type Plan, type StackConfig, type Throttle } from './stack.js';

/**
 * The glue between osls and shared/aws/stack.ts: the `${file(...)}` variable sources serverless.yml
 * uses, and the small plugin that binds the stage. Loaded through shared/aws/serverless.cjs and
 * shared/aws/plugin.cjs (osls loads both with require()).
 */

/** What osls passes to a function exported by a `${file(...)}` source. */
export interface VariableContext {
  resolveConfigurationProperty: (path: string[]) => Promise<unknown>;
  resolveVariable: (variable: string) => Promise<unknown>;
}

type Json = Record<string, unknown>;

function num(value: unknown, where: string): number {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isFinite(n)) throw new Error(`invalid deploy settings in serverless.yml: ${where} must be a number (got ${JSON.stringify(value)})`);
  return n;
}

function plan(value: unknown, where: string): Plan {
  const p = (value ?? {}) as Json;
  return { rateLimit: num(p.rateLimit, `${where}.rateLimit`), burstLimit: num(p.burstLimit, `${where}.burstLimit`), quota: num(p.quota, `${where}.quota`), period: String(p.period) as Plan['period'] };
}

function throttle(value: unknown, where: string): Throttle {
  const p = (value ?? {}) as Json;
  // A quota here would be spendable by anyone who makes up webhook headers (issue 20, item 6): refused, not ignored.
  if (p.quota !== undefined) throw new Error(`invalid deploy settings in serverless.yml: ${where} takes no quota (docs/security.md, "AWS: what the template grants")`);
  return { rateLimit: num(p.rateLimit, `${where}.rateLimit`), burstLimit: num(p.burstLimit, `${where}.burstLimit`) };
}

/** Reads the deploy-time settings from serverless.yml (after osls has resolved `${param:...}` and the like). */
export async function readConfig(ctx: VariableContext): Promise<StackConfig> {
  const get = (...path: string[]) => ctx.resolveConfigurationProperty(path);
  const api = ((await get('custom', 'api')) ?? {}) as Json;
  const rates = ((await get('custom', 'rates')) ?? {}) as Json;
  // `--param callers=pos,pos-web` arrives as one string; a YAML list is accepted as well.
  const callers = Array.isArray(api.callers) ? api.callers.map(String) : String(api.callers ?? '').split(',');
  const callerPlans = (api.callerPlans ?? {}) as Json;
  return validateConfig({
    service: String(await get('service')),
    stage: String(await ctx.resolveVariable('sls:stage')),
    tableName: String(await get('custom', 'tableName')),
    ssmPrefix: String(await get('custom', 'ssmPrefix')),
    rates: Object.fromEntries(Object.entries(rates).map(([system, rate]) => [system, num(rate, `custom.rates.${system}`)])) as Record<SystemName, number>,
    callers: callers.map((c) => c.trim()).filter(Boolean),
    callerPlan: plan(api.callerPlan, 'custom.api.callerPlan'),
    callerPlans: Object.fromEntries(Object.entries(callerPlans).map(([c, p]) => [c, plan({ ...(api.callerPlan as Json), ...(p as Json) }, `custom.api.callerPlans.${c}`)])),
    webhookPlan: throttle(api.webhookPlan, 'custom.api.webhookPlan'),
    workerTimeout: num(await get('custom', 'workerTimeout'), 'custom.workerTimeout'),
    leaseSeconds: num(await get('custom', 'leaseSeconds'), 'custom.leaseSeconds'),
    kontantanalysSyncSchedule: String(await get('custom', 'kontantanalysSyncSchedule')),
  });
}

/** The `${file(./shared/aws/serverless.cjs):<name>}` sources. */
export const variables = {
  functions: async (ctx: VariableContext) => slsFunctions(await readConfig(ctx)),
  resources: async (ctx: VariableContext) => slsResources(await readConfig(ctx)),
  apiKeys: async (ctx: VariableContext) => slsApiKeys(await readConfig(ctx)),
  usagePlans: async (ctx: VariableContext) => slsUsagePlans(await readConfig(ctx)),
};

interface Serverless extends InvokeServerless {
  service: InvokeServerless['service'] & { provider: { compiledCloudFormationTemplate: { Resources: Record<string, { Type: string; Properties?: Json; DependsOn?: string | string[] }> } } };
}

/**
 * Runs bindStage on the finished template, just before osls writes it out; for `serverless invoke local`
 * only, points the invoked function at the running local stack (shared/aws/invoke-local.ts).
 */
export class StagePlugin {
  readonly hooks: Record<string, () => Promise<void> | void>;

  constructor(serverless: Serverless, options: { function?: string } = {}) {
    this.hooks = {
      'before:aws:package:finalize:saveServiceState': () => bindStage(serverless.service.provider.compiledCloudFormationTemplate),
      ...(isInvokeLocal(serverless) ? invokeLocalHooks(serverless, options) : {}),
    };
  }
}
