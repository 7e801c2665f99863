import { readFileSync } from 'node:fs';
import { parse, type Tags } from 'yaml';
import { describe, expect, it } from 'vitest';
import { readConfig, type VariableContext } from '../../shared/aws/osls.js';
import { stackConfig } from '../helpers/stack-config.js';
import { bindStage, roleId, slsApiKeys, slsFunctions, slsResources, slsUsagePlans, SSM_GROUP, SYSTEMS, validateConfig, workerConcurrency, type StackConfig } from '../../shared/aws/stack.js';
import { buildOpenApi } from '../../shared/http/openapi.js';
import { HTTP_ROUTES } from '../../shared/local/routes.js';
import { TABLE_KEYS } from '../../shared/store/table.js';
import { SYSTEM_NAMES } from '../../shared/systems/registry.js';

// CloudFormation short forms, kept as plain objects so the test can look inside them.
const cfnTags: Tags = ['Ref', 'GetAtt', 'Join', 'Sub', 'Select', 'Split', 'If', 'Equals', 'ImportValue'].flatMap((name) => [
  { tag: `!${name}`, resolve: (v: unknown) => ({ [`Fn::${name}`]: v }) } as never,
  { tag: `!${name}`, collection: 'seq', resolve: (v: { toJSON(): unknown }) => ({ [`Fn::${name}`]: v.toJSON() }) } as never,
]);

const sls = parse(readFileSync(new URL('../../serverless.yml', import.meta.url), 'utf8'), { customTags: cfnTags }) as any;
const written = sls.resources[1].Resources as Record<string, any>;

/** serverless.yml's settings as osls would resolve them with no --param given, with two callers. */
const CFG = stackConfig('unit', { callers: ['pos', 'pos-web'], callerPlans: { 'pos-web': { rateLimit: 5 } } });
const functions = slsFunctions(CFG) as Record<string, any>;
const generated = slsResources(CFG).Resources as Record<string, any>;

describe('serverless.yml and the generated stack', () => {
  it('takes functions, roles, queues, keys and plans from the generator, and pins the worker timeout under the lease', () => {
    const source = './shared/aws/serverless.cjs';
    expect(sls.functions).toBe(`\${file(${source}):functions}`);
    expect(sls.resources[0]).toBe(`\${file(${source}):resources}`);
    expect(sls.provider.apiGateway).toMatchObject({ apiKeySourceType: 'AUTHORIZER', apiKeys: `\${file(${source}):apiKeys}`, usagePlan: `\${file(${source}):usagePlans}` });
    expect(sls.plugins).toContain('./shared/aws/plugin.cjs');
    expect(sls.custom.workerTimeout).toBeLessThan(sls.custom.leaseSeconds);
    expect(Object.keys(sls.custom.rates)).toEqual([...SYSTEM_NAMES]);
  });

  it('knows exactly the systems the registry knows, each with an SSM group', () => {
    expect(SYSTEMS).toEqual([...SYSTEM_NAMES]);
    expect(new Set(Object.values(SSM_GROUP))).toEqual(new Set(['cambio', 'nif', 'brp', 'kontantanalys']));
  });

  it('declares the same routes as the local gateway and the OpenAPI document, every one behind the authorizer and an API key', () => {
    // The operator console (issue 22) is not the callers' API: its routes have their own authorizer (below).
    const callers = Object.entries(functions).filter(([name]) => name !== 'console');
    const declared = callers.flatMap(([name, fn]) => (fn.events ?? []).filter((e: any) => e.http).map((e: any) => `${name} ${e.http.method.toUpperCase()} ${e.http.path}`));
    expect(declared.sort()).toEqual(HTTP_ROUTES.map((r) => `${r.function} ${r.method} ${r.path}`).sort());
    const paths = buildOpenApi().paths as Record<string, Record<string, unknown>>;
    const documented = Object.entries(paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
    expect(documented.sort()).toEqual(HTTP_ROUTES.map((r) => `${r.method} ${r.path}`).sort());
    for (const [, fn] of callers) {
      for (const e of (fn.events ?? []).filter((x: any) => x.http)) expect(e.http).toMatchObject({ private: true, authorizer: { name: 'authorize', type: 'request', resultTtlInSeconds: 0 } });
    }
  });

  it("puts the console's routes behind the console's own authorizer, without an API key (operators have none)", () => {
    const events = (functions.console.events ?? []).map((e: any) => e.http);
    expect(events.map((e: any) => `${e.method.toUpperCase()} /${e.path}`).sort()).toEqual(['GET /console', 'GET /console/{proxy+}', 'POST /console/{proxy+}']);
    for (const e of events) {
      expect(e.authorizer).toEqual({ name: 'consoleAuthorize', type: 'request', resultTtlInSeconds: 0 });
      expect(e.private).toBeUndefined();
    }
    expect(functions.consoleAuthorize.handler).toBe('functions/console-authorize.handler');
  });

  it('runs one worker per system from its own queue, with partial batch failures and concurrency sized to the rate', () => {
    for (const system of SYSTEMS) {
      const name = `retry${system.split('-').map((w) => w[0]?.toUpperCase() + w.slice(1)).join('')}`;
      const worker = functions[name];
      expect(worker.handler).toBe(`functions/retry-${system}.handler`);
      expect(worker.timeout).toBe(60);
      expect(worker.reservedConcurrency).toBe(workerConcurrency(CFG.rates[system]));
      expect(worker.events[0].sqs).toEqual({
        arn: { 'Fn::GetAtt': [expect.stringMatching(/^RetryQueue/), 'Arn'] },
        batchSize: 100,
        maximumBatchingWindow: 1,
        functionResponseType: 'ReportBatchItemFailures',
        maximumConcurrency: worker.reservedConcurrency,
      });
      expect(worker.environment.RETRY_QUEUE_URL).toEqual({ Ref: worker.events[0].sqs.arn['Fn::GetAtt'][0] });
      const queue = generated[worker.events[0].sqs.arn['Fn::GetAtt'][0]].Properties;
      expect(queue.QueueName).toBe(`paybridge-unit-retry-${system}`);
      expect(queue.VisibilityTimeout).toBeGreaterThanOrEqual(6 * worker.timeout);
    }
    expect(functions.retryWorker).toBeUndefined();
    expect(functions.sweep.events[0].schedule.rate).toBe('rate(1 minute)');
  });

  it.each([
    [10, 21],
    [2, 5],
    [5, 11],
    [0.5, 2],
    [0.1, 2],
    [2.2, 6],
  ])('sizes a worker for %d sends/s at %d: max(2, ceil(rate x 2) + 1)', (rate, expected) => {
    expect(workerConcurrency(rate)).toBe(expected);
  });

  it('lets the event delivery function read payment records and clear their pending mark, never write one whole (issue 21)', () => {
    const statements = generated[roleId('eventDelivery')].Properties.Policies[0].PolicyDocument.Statement as any[];
    // IAM's StringLike on dynamodb:LeadingKeys: `*` any run of characters.
    const like = (pattern: string, key: string) => new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\?]/g, '\\$&').replace(/\*/g, '.*')}$`).test(key);
    const allows = (action: string, key: string) =>
      statements.some((st) => st.Effect === 'Allow' && [st.Action].flat().includes(action) && ([st.Condition?.['ForAllValues:StringLike']?.['dynamodb:LeadingKeys']].flat().filter(Boolean) as string[]).some((p) => like(p, key)));
    for (const record of SYSTEMS.map((system) => `${system}#default#k`)) {
      expect(['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:UpdateItem'].filter((a) => !allows(a, record))).toEqual([]);
      expect(allows('dynamodb:PutItem', record)).toBe(false);
    }
    // Its own items: events and deliveries are written whole.
    expect(['event#evt_x', 'delivery#ep#evt_x'].every((k) => allows('dynamodb:PutItem', k))).toBe(true);
  });

  it('gives each function the queue and SSM paths of its own system, and read routes neither queue nor group', () => {
    expect(functions.kontantanalysPut.environment.RETRY_QUEUE_URL).toEqual({ Ref: 'RetryQueueKontantanalys' });
    expect(functions.kontantanalysSync.environment.RETRY_QUEUE_URL).toEqual({ Ref: 'RetryQueueKontantanalys' });
    expect(functions.nifCorporatePayment.environment).toMatchObject({ RETRY_QUEUE_URL: { Ref: 'RetryQueueNifCorporate' }, SECRETS_PARAMETER_PATHS: '/paybridge/unit/common,/paybridge/unit/nif', NIF_MAX_RPS: '10' });
    expect(functions.brpSale.environment).toMatchObject({ BRP_MAX_RPS: '2', SECRETS_PARAMETER_PATHS: '/paybridge/unit/common,/paybridge/unit/brp' });
    for (const read of ['getPayment', 'kontantanalysGet', 'openapi']) {
      expect(functions[read].environment.RETRY_QUEUE_URL, read).toBeUndefined();
      expect(functions[read].environment.SECRETS_PARAMETER_PATHS, read).toBe('/paybridge/unit/common');
    }
    const urls = functions.sweep.environment.RETRY_QUEUE_URLS['Fn::Sub'] as string;
    expect(JSON.parse(urls.replace(/\$\{(\w+)\}/g, 'ref:$1'))).toEqual(Object.fromEntries(SYSTEMS.map((s) => [s, `ref:RetryQueue${s.split('-').map((w) => w[0]?.toUpperCase() + w.slice(1)).join('')}`])));
    expect(functions.authorize.environment).toEqual({ API_KEYS_PARAMETER: '/paybridge/unit/common/API_KEYS', CALLERS: 'pos,pos-web', USAGE_KEY_PREFIX: 'paybridge-unit-usage-key-' });
  });

  it('keeps secrets out of every environment: they are read from SSM', () => {
    for (const [name, fn] of Object.entries(functions)) {
      for (const variable of Object.keys(fn.environment ?? {})) expect(`${name}: ${variable}`).not.toMatch(/SECRET$|PASSWORD|TOKEN|: API_KEYS$|SUBSCRIPTION_KEY|LOG_HASH_KEY$/);
    }
  });

  it('gives every caller its own API Gateway key and usage plan with throttle and quota, and the webhooks a throttle without quota', () => {
    expect(slsUsagePlans(CFG)).toEqual([
      { Pos: { throttle: { rateLimit: 20, burstLimit: 40 }, quota: { limit: 1_000_000, period: 'MONTH' } } },
      { PosWeb: { throttle: { rateLimit: 5, burstLimit: 40 }, quota: { limit: 1_000_000, period: 'MONTH' } } },
      // Anyone can make up webhook headers (the authorizer cannot see the body): a quota would be theirs to spend (issue 20, item 6).
      { Webhooks: { throttle: { rateLimit: 50, burstLimit: 100 } } },
    ]);
    expect(slsApiKeys(CFG).map((k) => Object.values(k)[0])).toEqual([
      [expect.objectContaining({ name: 'paybridge-unit-pos', value: 'paybridge-unit-usage-key-pos' })],
      [expect.objectContaining({ name: 'paybridge-unit-pos-web', value: 'paybridge-unit-usage-key-pos-web' })],
      [expect.objectContaining({ name: 'paybridge-unit-webhooks', value: 'paybridge-unit-usage-key-webhooks' })],
    ]);
  });

  it('refuses deploy settings that would break the design, naming each', () => {
    expect(() => validateConfig({ ...CFG, workerTimeout: 90 })).toThrow(/worker timeout \(90 s\) must be shorter than LEASE_SECONDS \(90 s\)/);
    expect(() => validateConfig({ ...CFG, callers: ['pos', 'POS web'] })).toThrow(/caller "POS web"/);
    expect(() => validateConfig({ ...CFG, callers: ['pos--web'] })).toThrow(/caller "pos--web"/);
    expect(() => validateConfig({ ...CFG, callers: ['webhooks'] })).toThrow(/reserved/);
    expect(() => validateConfig({ ...CFG, callers: ['pos', 'pos'] })).toThrow(/twice/);
    expect(() => validateConfig({ ...CFG, service: 'pb', stage: 'x', callers: ['a'] })).toThrow(/usage key pb-x-usage-key-a of a must be 20 to 128 characters/);
    expect(() => validateConfig({ ...CFG, callerPlans: { nobody: {} } })).toThrow(/callerPlans.nobody names no caller/);
    const { brp: _drop, ...rates } = CFG.rates;
    expect(() => validateConfig({ ...CFG, rates: rates as StackConfig['rates'] })).toThrow(/custom.rates.brp must be a positive number/);
    expect(() => validateConfig({ ...CFG, rates: { ...CFG.rates, bpr: 2 } as StackConfig['rates'] })).toThrow(/custom.rates.bpr is not a system/);
    expect(validateConfig(CFG)).toBe(CFG);
  });

  it('reads those settings from serverless.yml as osls resolves them (a --param list arrives as one string)', async () => {
    const resolved: Record<string, unknown> = {
      service: 'paybridge',
      'custom.api': { ...sls.custom.api, callers: 'pos, pos-web', callerPlans: { 'pos-web': { rateLimit: '5' } } },
      'custom.rates': { ...CFG.rates, brp: '4' },
      'custom.tableName': 'paybridge-unit-records',
      'custom.ssmPrefix': '/paybridge/unit',
      'custom.workerTimeout': 60,
      'custom.leaseSeconds': 90,
      'custom.kontantanalysSyncSchedule': 'rate(1 day)',
    };
    const ctx: VariableContext = { resolveConfigurationProperty: async (path) => resolved[path.join('.')], resolveVariable: async () => 'unit' };
    const cfg = await readConfig(ctx);
    expect(cfg).toMatchObject({ stage: 'unit', callers: ['pos', 'pos-web'], rates: { brp: 4 }, callerPlans: { 'pos-web': { rateLimit: 5, burstLimit: 40 } }, webhookPlan: CFG.webhookPlan });
    await expect(readConfig({ ...ctx, resolveConfigurationProperty: async (path) => (path.join('.') === 'custom.workerTimeout' ? 'soon' : resolved[path.join('.')]) })).rejects.toThrow(/custom.workerTimeout must be a number/);
  });

  it('declares the table as the code uses it: on demand, TTL, PITR, deletion protection, the due and status indexes', () => {
    const t = written.RecordsTable.Properties;
    expect(t.BillingMode).toBe('PAY_PER_REQUEST');
    expect(t.DeletionProtectionEnabled).toBe(true);
    expect(t.TimeToLiveSpecification).toEqual({ AttributeName: TABLE_KEYS.ttlAttribute, Enabled: true });
    expect(t.PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled).toBe(true);
    expect(t.KeySchema).toEqual([{ AttributeName: TABLE_KEYS.partitionKey, KeyType: 'HASH' }]);
    expect(t.GlobalSecondaryIndexes[0]).toMatchObject({
      IndexName: TABLE_KEYS.dueIndex,
      KeySchema: [
        { AttributeName: TABLE_KEYS.dueIndexHash, KeyType: 'HASH' },
        { AttributeName: TABLE_KEYS.dueIndexRange, KeyType: 'RANGE' },
      ],
    });
    expect(t.GlobalSecondaryIndexes[1]).toMatchObject({ IndexName: TABLE_KEYS.statusIndex, KeySchema: [{ AttributeName: TABLE_KEYS.statusIndexHash, KeyType: 'HASH' }, { AttributeName: TABLE_KEYS.statusIndexRange, KeyType: 'RANGE' }], Projection: { ProjectionType: 'KEYS_ONLY' } });
    expect(t.AttributeDefinitions).toEqual(expect.arrayContaining([{ AttributeName: TABLE_KEYS.statusIndexHash, AttributeType: 'S' }, { AttributeName: TABLE_KEYS.statusIndexRange, AttributeType: 'N' }]));
    expect(written.RecordsTable.DeletionPolicy).toBe('Retain');
  });

  it('binds the declared stage to the compiled deployment, and makes keys, plans and gateway responses wait for what they need', () => {
    const template = {
      Resources: {
        ApiGatewayDeploymentX: { Type: 'AWS::ApiGateway::Deployment', Properties: { RestApiId: { Ref: 'Api' }, StageName: 'unit' }, DependsOn: ['MethodA'] },
        ApiGatewayStage: { Type: 'AWS::ApiGateway::Stage', Properties: { StageName: 'unit' } },
        Plan: { Type: 'AWS::ApiGateway::UsagePlan', DependsOn: 'ApiGatewayDeploymentX' },
        Key: { Type: 'AWS::ApiGateway::ApiKey', DependsOn: 'ApiGatewayDeploymentX' },
        Unauthorized: { Type: 'AWS::ApiGateway::GatewayResponse' },
      },
    } as any;
    bindStage(template);
    expect(template.Resources.ApiGatewayDeploymentX).toEqual({ Type: 'AWS::ApiGateway::Deployment', Properties: { RestApiId: { Ref: 'Api' } }, DependsOn: ['MethodA', 'Unauthorized'] });
    expect(template.Resources.ApiGatewayStage.Properties).toEqual({ StageName: 'unit', DeploymentId: { Ref: 'ApiGatewayDeploymentX' } });
    expect([template.Resources.Plan.DependsOn, template.Resources.Key.DependsOn]).toEqual(['ApiGatewayStage', 'ApiGatewayStage']);
    expect(() => bindStage({ Resources: {} })).toThrow(/expected one API Gateway deployment and the ApiGatewayStage resource/);
  });
});
