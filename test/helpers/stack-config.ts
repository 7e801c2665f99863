import type { StackConfig } from '../../shared/aws/stack.js';

/**
 * A stage's settings as serverless.yml resolves them with no --param given (test/unit/serverless.test.ts
 * holds the file to them), for the tests and benches that generate the stack; `change` for what one differs in.
 */
export function stackConfig(stage: string, change: Partial<StackConfig> = {}): StackConfig {
  return {
    service: 'paybridge',
    stage,
    tableName: `paybridge-${stage}-records`,
    ssmPrefix: `/paybridge/${stage}`,
    rates: { cambio: 10, 'nif-membership': 10, 'nif-corporate': 10, nif: 10, brp: 2, kontantanalys: 5 },
    callers: ['pos'],
    callerPlan: { rateLimit: 20, burstLimit: 40, quota: 1_000_000, period: 'MONTH' },
    callerPlans: {},
    webhookPlan: { rateLimit: 50, burstLimit: 100 },
    workerTimeout: 60,
    leaseSeconds: 90,
    kontantanalysSyncSchedule: 'rate(1 day)',
    ...change,
  };
}
