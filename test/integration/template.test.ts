import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOpenApi } from '../../shared/http/openapi.js';
import { HTTP_ROUTES } from '../../shared/local/routes.js';
import { SYSTEM_NAMES } from '../../shared/systems/registry.js';
import { lintTemplate } from '../template/lint.js';
import { checkPolicy } from '../template/policy.js';
import { functionGrants, grantsTable } from '../template/grants.js';
import { driveFunctions, type DriveResult } from '../helpers/drive-functions.js';

type Json = Record<string, any>;

const checkedInOpenApi = JSON.parse(readFileSync(new URL('../../shared/http/openapi.json', import.meta.url), 'utf8')) as { paths: Record<string, Json> };

/** `METHOD /path` for each API Gateway method, its path rebuilt from the resource tree, with the function it integrates. */
function packagedRoutes(resources: Record<string, Json>): string[] {
  const pathOf = (id: string): string => {
    const r = resources[id]?.Properties;
    const parent = r?.ParentId?.Ref;
    return `${parent ? pathOf(parent) : ''}/${r?.PathPart}`;
  };
  return Object.values(resources)
    .filter((r) => r.Type === 'AWS::ApiGateway::Method')
    .map((m) => {
      const fnId = (m.Properties.Integration.Uri['Fn::Join'][1] as unknown[]).map((part: any) => part?.['Fn::GetAtt']?.[0]).find(Boolean) as string;
      const fn = (resources[fnId] as Json).Properties.FunctionName.replace(/^paybridge-test-/, '');
      return `${fn} ${m.Properties.HttpMethod} ${pathOf(m.Properties.ResourceId.Ref)}`;
    });
}

const statements = (role: Json): Json[] => role.Properties.Policies.flatMap((p: Json) => p.PolicyDocument.Statement);
/** Breaks a role on purpose: one more statement in its first policy. */
const addStatement = (t: Json, roleId: string, statement: Json) => t.Resources[roleId].Properties.Policies[0].PolicyDocument.Statement.push(statement);
/** Every action a role grants, as `action on <resource>` with the resource reduced to its logical id or ARN text. */
function grants(role: Json): string[] {
  const name = (r: any) => r?.['Fn::GetAtt']?.[0] ?? r?.['Fn::Sub'] ?? r;
  return statements(role).flatMap((st) => [st.Action].flat().flatMap((a: string) => [st.Resource].flat().map((r) => `${a} on ${name(r)}`))).sort();
}

/** The packaged CloudFormation template, built offline by `serverless package` exactly as deploy would. */
describe('the packaged CloudFormation template', () => {
  let dir: string;
  let template: Json;
  let resources: Record<string, Json>;
  const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);
  const fn = (name: string) => Object.values(resources).find((r) => r.Type === 'AWS::Lambda::Function' && r.Properties.FunctionName === `paybridge-test-${name}`) as Json;
  const roleOf = (name: string) => resources[fn(name).Properties.Role['Fn::GetAtt'][0]] as Json;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'paybridge-package-'));
    execFileSync(process.execPath, ['node_modules/serverless/bin/serverless.js', 'package', '--stage', 'test', '--package', dir], { stdio: 'pipe', timeout: 540_000 });
    template = JSON.parse(readFileSync(join(dir, 'cloudformation-template-update-stack.json'), 'utf8'));
    resources = template.Resources;
    // Packaging bundles every function with esbuild: 1.5 to 3 minutes alone on this shared 2-core machine, over
    // 5 inside a full `npm test` at a load average of 35.
  }, 570_000);
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('passes the offline linter (types, properties, required properties, Ref/GetAtt/DependsOn targets)', () => {
    expect(lintTemplate(template)).toEqual([]);
  });

  it('the linter does catch a wrong property, a missing required one and a dangling reference', () => {
    const broken = structuredClone(template);
    broken.Resources.RetryQueueCambio.Properties.VisibilityTimeOut = 30;
    delete broken.Resources.RecordsTable.Properties.KeySchema;
    broken.Resources.RetryQueueCambio.Properties.RedrivePolicy.deadLetterTargetArn = { 'Fn::GetAtt': ['NoSuchQueue', 'Arn'] };
    const problems = lintTemplate(broken);
    expect(problems).toContain('RetryQueueCambio (AWS::SQS::Queue): unknown property VisibilityTimeOut');
    expect(problems).toContain('RecordsTable (AWS::DynamoDB::Table): missing required property KeySchema');
    expect(problems).toContain('RetryQueueCambio: GetAtt on unknown NoSuchQueue');
  });

  it('serves exactly the routes of the local gateway and of the OpenAPI document (issue 14: one route table)', () => {
    const local = HTTP_ROUTES.map((r) => `${r.function} ${r.method} ${r.path}`).sort();
    // The operator console is not the callers' API (not in the OpenAPI document): its routes are checked below.
    expect(packagedRoutes(resources).filter((r) => !r.includes(' /console')).sort()).toEqual(local);
    const documented = (paths: Record<string, Json>) => Object.entries(paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`)).sort();
    const methodsAndPaths = HTTP_ROUTES.map((r) => `${r.method} ${r.path}`).sort();
    expect(documented(buildOpenApi().paths as Record<string, Json>)).toEqual(methodsAndPaths);
    expect(documented(checkedInOpenApi.paths)).toEqual(methodsAndPaths);
  });

  it('the route comparison notices a route the template lacks or gets wrong', () => {
    const broken = structuredClone(resources);
    const [id] = ofType('AWS::ApiGateway::Method').find(([, m]) => m.Properties.HttpMethod === 'PUT') as [string, Json];
    (broken[id] as Json).Properties.HttpMethod = 'POST';
    expect(packagedRoutes(broken)).toContain('kontantanalysPut POST /v1/kontantanalys/{resource}/{externalId}');
    expect(packagedRoutes(broken).sort()).not.toEqual(HTTP_ROUTES.map((r) => `${r.function} ${r.method} ${r.path}`).sort());
  });

  it('meets the hardening policy (issue 12): authorizers and keys, least privilege, stage throttling and logs, encryption, worker limits', () => {
    expect(checkPolicy(template)).toEqual([]);
  });

  it.each<[string, (t: Json) => void, RegExp]>([
    ['an open method', (t) => Object.assign(Object.values(t.Resources).find((r: any) => r.Type === 'AWS::ApiGateway::Method') as Json, { Properties: { HttpMethod: 'GET', AuthorizationType: 'NONE', ApiKeyRequired: false } }), /neither an authorizer nor a required API key/],
    ['a wildcard action', (t) => addStatement(t, 'SweepRole', { Effect: 'Allow', Action: 'sqs:*', Resource: 'x' }), /SweepRole .*wildcard action sqs:\*/],
    ['DynamoDB on every resource', (t) => addStatement(t, 'GetPaymentRole', { Effect: 'Allow', Action: ['dynamodb:GetItem'], Resource: '*' }), /GetPaymentRole .*dynamodb:GetItem on every resource/],
    ['DynamoDB on every table', (t) => addStatement(t, 'GetPaymentRole', { Effect: 'Allow', Action: ['dynamodb:Scan'], Resource: { 'Fn::Sub': 'arn:aws:dynamodb:${AWS::Region}:${AWS::AccountId}:table/*' } }), /GetPaymentRole .*DynamoDB resource with a wildcard/],
    ['SSM on every parameter', (t) => addStatement(t, 'BrpSaleRole', { Effect: 'Allow', Action: ['ssm:GetParameters'], Resource: '*' }), /BrpSaleRole .*ssm:GetParameters on every resource/],
    ["another system's SSM group", (t) => addStatement(t, 'BrpSaleRole', { Effect: 'Allow', Action: ['ssm:GetParametersByPath'], Resource: { 'Fn::Sub': 'arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/paybridge/test/cambio' } }), /BrpSaleRole .*SSM resource .*\/paybridge\/test\/cambio is outside/],
    ["being told to read another system's group", (t) => (t.Resources.BrpSaleLambdaFunction.Properties.Environment.Variables.SECRETS_PARAMETER_PATHS += ',/paybridge/test/nif'), /BrpSaleRole: reads SSM path \/paybridge\/test\/nif/],
    ["a payment function told to read the console's group (OPERATOR_KEYS)", (t) => (t.Resources.BrpSaleLambdaFunction.Properties.Environment.Variables.SECRETS_PARAMETER_PATHS += ',/paybridge/test/console'), /BrpSaleRole: reads SSM path \/paybridge\/test\/console/],
    ['a console method without its authorizer', (t) => Object.assign((t.Resources.ApiGatewayMethodConsoleProxyVarPost as Json).Properties, { AuthorizationType: 'NONE', AuthorizerId: undefined }), /ApiGatewayMethodConsoleProxyVarPost: method has neither an authorizer nor a required API key/],
    ['kms:Decrypt without kms:ViaService', (t) => addStatement(t, 'BrpSaleRole', { Effect: 'Allow', Action: ['kms:Decrypt'], Resource: 'arn:aws:kms:eu-north-1:1:key/x' }), /kms:Decrypt without a kms:ViaService condition/],
    ['a shared role', (t) => (t.Resources.NifPaymentLambdaFunction.Properties.Role = { 'Fn::GetAtt': ['BrpSaleRole', 'Arn'] }), /BrpSaleRole: shared by BrpSaleLambdaFunction, NifPaymentLambdaFunction$/],
    ['no stage throttling', (t) => delete t.Resources.ApiGatewayStage.Properties.MethodSettings, /ApiGatewayStage: no default throttling/],
    ['no access log', (t) => delete t.Resources.ApiGatewayStage.Properties.AccessLogSetting, /ApiGatewayStage: no access log group/],
    ['a plain-text access log', (t) => (t.Resources.ApiGatewayStage.Properties.AccessLogSetting.Format = 'requestId: $context.requestId'), /access log format is not JSON/],
    ['a deployment that makes its own stage', (t) => (Object.values(t.Resources).find((r: any) => r.Type === 'AWS::ApiGateway::Deployment') as Json).Properties.StageName = 'test', /the deployment creates stage test itself/],
    ['an unencrypted queue', (t) => (t.Resources.RetryDlqBrp.Properties.SqsManagedSseEnabled = false), /RetryDlqBrp: queue not encrypted/],
    ['an unencrypted table', (t) => delete t.Resources.RecordsTable.Properties.SSESpecification, /RecordsTable: table not encrypted/],
    ['no point-in-time recovery', (t) => delete t.Resources.RecordsTable.Properties.PointInTimeRecoverySpecification, /RecordsTable: no point-in-time recovery/],
    ['no deletion protection', (t) => (t.Resources.RecordsTable.Properties.DeletionProtectionEnabled = false), /RecordsTable: no deletion protection/],
    ['a worker as long as its lease', (t) => (t.Resources.RetryNifLambdaFunction.Properties.Timeout = 90), /RetryNifLambdaFunction: timeout 90 s is not shorter than LEASE_SECONDS 90/],
    ['a worker without reserved concurrency', (t) => delete t.Resources.RetryBrpLambdaFunction.Properties.ReservedConcurrentExecutions, /RetryBrpLambdaFunction: no reserved concurrency/],
    ['an event source above the reserved concurrency', (t) => (t.Resources.RetryBrpEventSourceMappingSQSRetryQueueBrp.Properties.ScalingConfig.MaximumConcurrency = 50), /maximum concurrency 50 is not between 2 and the reserved/],
    ['a short visibility timeout', (t) => (t.Resources.RetryQueueCambio.Properties.VisibilityTimeout = 300), /RetryQueueCambio: visibility timeout 300 s is under 6x/],
    ['table access without leading keys', (t) => statements(t.Resources.BrpSaleRole).filter((st) => st.Condition).forEach((st) => delete st.Condition), /BrpSaleRole .*dynamodb:GetItem.* on every item/],
    ['a leading key of every kind', (t) => (statements(t.Resources.SweepRole).find((st) => st.Condition) as Json).Condition['ForAllValues:StringLike']['dynamodb:LeadingKeys'].push('*'), /SweepRole .*leading key pattern \* matches items of every kind/],
    ['an unencrypted alarm topic', (t) => delete t.Resources.AlarmTopic.Properties.KmsMasterKeyId, /AlarmTopic: topic not encrypted/],
    ['the WAF off by default', (t) => (t.Parameters.WafParameter.Default = 'false'), /the WAF is off by default/],
    ['WAF sampled requests', (t) => (t.Resources.WebAcl.Properties.Rules[1].VisibilityConfig.SampledRequestsEnabled = true), /WebAcl: sampled requests are on/],
    ['no per-address webhook rule', (t) => t.Resources.WebAcl.Properties.Rules.pop(), /WebAcl: no rate-based rule blocking webhook requests/],
    ['a WAF log with the patient header', (t) => t.Resources.WafLogging.Properties.RedactedFields.splice(1, 1), /the WAF log does not redact the patient header/],
    ["a WAF log with the console's session cookie", (t) => t.Resources.WafLogging.Properties.RedactedFields.splice(4, 1), /the WAF log does not redact the cookie header/],
    ['a quota on the webhooks plan', (t) => (Object.values(t.Resources).find((r: any) => r.Properties?.UsagePlanName === 'paybridge-Webhooks-test') as Json).Properties.Quota = { Limit: 1, Period: 'MONTH' }, /the webhooks' plan has a quota/],
  ])('the policy check fails on %s', (_what, breakIt, expected) => {
    const broken = structuredClone(template);
    breakIt(broken);
    const problems = checkPolicy(broken);
    expect(problems.some((p) => expected.test(p)), problems.join('\n')).toBe(true);
  });

  it('zips each function as its minified handler alone, at most 1 MiB, its source map kept apart (issue 14)', () => {
    const functions = ofType('AWS::Lambda::Function');
    expect(functions.length).toBeGreaterThan(0);
    for (const [id, f] of functions) {
      const artifact = join(dir, basename(f.Properties.Code.S3Key as string));
      expect(statSync(artifact).size, id).toBeLessThanOrEqual(1024 * 1024);
      const listed = execFileSync('unzip', ['-Z1', artifact], { encoding: 'utf8' }).trim().split('\n');
      const handler = `${(f.Properties.Handler as string).replace(/\.handler$/, '')}.mjs`;
      expect(listed, id).toEqual([handler]);
      // Beside the zips: osls moves the whole .serverless folder to the --package directory.
      expect(existsSync(join(dir, 'sourcemaps', `${basename(handler)}.map`)), id).toBe(true);
    }
  });

  it('has every function: one per route, one worker per system, the sweep, the Kontantanalys run, the authorizer, the console and its authorizer', () => {
    const functions = ofType('AWS::Lambda::Function');
    // The events routes share one function (issue 21); beside the routes and workers: the sweep, the
    // Kontantanalys run, the authorizer, the event delivery function, the console and its authorizer.
    expect(functions.length).toBe(new Set(HTTP_ROUTES.map((r) => r.function)).size + SYSTEM_NAMES.length + 6);
    expect(fn('console').Properties.Handler).toBe('functions/console.handler');
    expect(fn('consoleAuthorize').Properties.Handler).toBe('functions/console-authorize.handler');
    const schedules = ofType('AWS::Events::Rule').map(([, r]) => r.Properties.ScheduleExpression).filter(Boolean).sort();
    expect(schedules).toEqual(['rate(1 day)', 'rate(1 minute)', 'rate(1 minute)']);
    expect(fn('authorize').Properties.Handler).toBe('functions/authorize.handler');
  });

  it('runs each system from its own queue and DLQ, SSE on, 5 receives, with partial batch failures and bounded concurrency', () => {
    for (const system of SYSTEM_NAMES) {
      const [queueId, queue] = ofType('AWS::SQS::Queue').find(([, q]) => q.Properties.QueueName === `paybridge-test-retry-${system}`) as [string, Json];
      const [dlqId] = ofType('AWS::SQS::Queue').find(([, q]) => q.Properties.QueueName === `paybridge-test-retry-${system}-dlq`) as [string, Json];
      expect(queue.Properties.RedrivePolicy).toEqual({ deadLetterTargetArn: { 'Fn::GetAtt': [dlqId, 'Arn'] }, maxReceiveCount: 5 });
      const [, mapping] = ofType('AWS::Lambda::EventSourceMapping').find(([, m]) => m.Properties.EventSourceArn['Fn::GetAtt'][0] === queueId) as [string, Json];
      expect(mapping.Properties).toMatchObject({ BatchSize: 100, MaximumBatchingWindowInSeconds: 1, FunctionResponseTypes: ['ReportBatchItemFailures'] });
      const worker = resources[mapping.Properties.FunctionName['Fn::GetAtt'][0]] as Json;
      expect(worker.Properties.Handler).toBe(`functions/retry-${system}.handler`);
      expect(worker.Properties.Environment.Variables).toMatchObject({ RETRY_QUEUE_URL: { Ref: queueId }, LEASE_SECONDS: '90' });
      expect(worker.Properties.Timeout).toBe(60);
      expect(mapping.Properties.ScalingConfig.MaximumConcurrency).toBe(worker.Properties.ReservedConcurrentExecutions);
    }
    expect(fn('retryBrp').Properties.ReservedConcurrentExecutions).toBe(5);
    expect(fn('retryCambio').Properties.ReservedConcurrentExecutions).toBe(21);
    expect(fn('retryKontantanalys').Properties.ReservedConcurrentExecutions).toBe(11);
  });

  it('grants each kind of function exactly the table and queue actions it uses, on its own items', () => {
    const dataOnly = (name: string) => grants(roleOf(name)).filter((g) => /^(dynamodb|sqs):/.test(g));
    const table = (...actions: string[]) => actions.map((a) => `dynamodb:${a} on RecordsTable`);
    const query = 'dynamodb:Query on ${RecordsTable.Arn}/index/*';
    // A payment route reads its own queue's depth: with a backlog it queues rather than taking a send slot per payment.
    expect(dataOnly('brpSale')).toEqual([...table('GetItem', 'PutItem', 'UpdateItem'), query, 'sqs:GetQueueAttributes on RetryQueueBrp', 'sqs:SendMessage on RetryQueueBrp'].sort());
    expect(dataOnly('kontantanalysPut')).toEqual([...table('GetItem', 'PutItem', 'UpdateItem'), query, 'sqs:GetQueueAttributes on RetryQueueKontantanalys', 'sqs:SendMessage on RetryQueueKontantanalys'].sort());
    expect(dataOnly('retryNifMembership')).toEqual(
      [...table('BatchGetItem', 'GetItem', 'PutItem', 'UpdateItem'), query, ...['ChangeMessageVisibility', 'DeleteMessage', 'GetQueueAttributes', 'ReceiveMessage', 'SendMessage'].map((a) => `sqs:${a} on RetryQueueNifMembership`)].sort(),
    );
    const queues = ['Cambio', 'NifMembership', 'NifCorporate', 'Nif', 'Brp', 'Kontantanalys'].map((s) => `RetryQueue${s}`);
    expect(dataOnly('sweep')).toEqual([...table('BatchGetItem', 'GetItem', 'PutItem'), query, ...queues.flatMap((q) => [`sqs:SendMessage on ${q}`, `sqs:GetQueueAttributes on ${q}`])].sort());
    expect(dataOnly('kontantanalysSync')).toEqual([...table('BatchGetItem', 'GetItem', 'PutItem'), query, 'sqs:SendMessage on RetryQueueKontantanalys'].sort());
    // The read routes remember each signed GET (issue 20 item 8): they write the webhook memory, nothing else.
    expect(dataOnly('getPayment')).toEqual(table('GetItem', 'PutItem', 'UpdateItem').sort());
    expect(dataOnly('kontantanalysGet')).toEqual(table('GetItem', 'PutItem', 'UpdateItem').sort());
    expect(dataOnly('openapi')).toEqual([]);
    expect(grants(roleOf('authorize')).filter((g) => !g.startsWith('logs:'))).toEqual(['ssm:GetParameters on arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/paybridge/test/common/API_KEYS']);
    // The console (issue 22) reads pages and records, writes records (an action) and audit entries, queues on any system's
    // queue; its authorizer reads the two parameters a session check needs, and nothing else.
    expect(dataOnly('console')).toEqual([...table('BatchGetItem', 'BatchGetItem', 'GetItem', 'GetItem', 'PutItem'), query, query, ...queues.map((q) => `sqs:SendMessage on ${q}`)].sort());
    // The timeline's settlement events (issue 22 item 4): events, deliveries and the index keys of endpoints, read
    // only; never an endpoint item (its secrets).
    const consoleStatements = statements(roleOf('console'));
    const eventReads = consoleStatements.filter((st) => JSON.stringify(st.Condition ?? {}).includes('event#*'));
    expect(eventReads.map((st) => st.Action).flat().sort()).toEqual(['dynamodb:BatchGetItem', 'dynamodb:Query']);
    for (const st of eventReads) expect(st.Condition['ForAllValues:StringLike']['dynamodb:LeadingKeys']).toEqual(['event#*', 'delivery#*', 'endpoints#*']);
    expect(JSON.stringify(consoleStatements)).not.toContain('endpoint#*');
    expect(grants(roleOf('consoleAuthorize')).filter((g) => !g.startsWith('logs:'))).toEqual(
      ['common/LOG_HASH_KEY', 'console/OPERATOR_KEYS'].map((n) => `ssm:GetParameters on arn:\${AWS::Partition}:ssm:\${AWS::Region}:\${AWS::AccountId}:parameter/paybridge/test/${n}`),
    );
    expect(grants(roleOf('console')).filter((g) => g.startsWith('ssm:'))).toEqual(
      ['common', 'common/*', 'console', 'console/*'].map((n) => `ssm:GetParametersByPath on arn:\${AWS::Partition}:ssm:\${AWS::Region}:\${AWS::AccountId}:parameter/paybridge/test/${n}`),
    );
    // Nothing deletes but a caller removing its own event endpoint (issue 21), on endpoint items only.
    for (const [id, role] of ofType('AWS::IAM::Role')) expect(grants(role).join('\n')).not.toMatch(id === 'EventEndpointsRole' ? /dynamodb:Scan|kms:/ : /dynamodb:Scan|dynamodb:DeleteItem|kms:/);
    const deletes = statements(roleOf('eventEndpoints')).filter((st) => [st.Action].flat().includes('dynamodb:DeleteItem'));
    expect(deletes.map((st) => [[st.Action].flat(), st.Condition['ForAllValues:StringLike']['dynamodb:LeadingKeys']])).toEqual([[['dynamodb:DeleteItem'], ['endpoint#*']]]);
    // Issue 20, item 11: the items of its own system (records, index keys, limiter) and the kinds it needs, nothing else.
    const items = (name: string) => statements(roleOf(name)).filter((st) => [st.Action].flat().some((a: string) => a.startsWith('dynamodb:'))).map((st) => st.Condition['ForAllValues:StringLike']['dynamodb:LeadingKeys']);
    expect(items('brpSale')).toEqual([['brp#*', 'limiter#brp', 'webhook#*'], ['brp#*', 'limiter#brp', 'webhook#*']]);
    expect(items('retryCambio')).toEqual([['cambio#*', 'limiter#cambio', 'fence#*'], ['cambio#*', 'limiter#cambio', 'fence#*']]);
    expect(items('kontantanalysSync')).toEqual([['kontantanalys#*'], ['kontantanalys#*']]);
    expect(items('kontantanalysGet')).toEqual([['kontantanalys#*'], ['webhook#*']]);
    expect(items('getPayment')).toEqual([SYSTEM_NAMES.map((s) => `${s}#*`), ['webhook#*']]);
    expect(items('sweep')[0]).toEqual([...SYSTEM_NAMES.map((s) => `${s}#*`), ...SYSTEM_NAMES.map((s) => `limiter#${s}`), 'fence#*']);
    // The console: records of every system, the listing index's partitions and the audit entries; no fence or webhook id;
    // read only, each system's limiter item (GetItem: its limits, issue 23) and the timeline's events, deliveries and
    // endpoint index keys.
    expect(items('console')).toEqual([
      ...[0].map(() => [...SYSTEM_NAMES.map((s) => `${s}#*`), 'pay#*', 'audit', 'audit#*']),
      SYSTEM_NAMES.map((s) => `limiter#${s}`),
      [...SYSTEM_NAMES.map((s) => `${s}#*`), 'pay#*', 'audit', 'audit#*'],
      ...[0, 1].map(() => ['event#*', 'delivery#*', 'endpoints#*']),
    ]);
    const limiterReads = consoleStatements.filter((st) => JSON.stringify(st.Condition ?? {}).includes('limiter#'));
    expect(limiterReads.map((st) => st.Action).flat()).toEqual(['dynamodb:GetItem']);
  });

  /**
   * Issue 20, item 2: every function is run through its own handler and wiring with its packaged environment,
   * and every AWS call it makes is recorded (test/helpers/drive-functions.ts); its role must grant exactly
   * those actions (test/template/grants.ts). A function added to the template is driven, or this fails.
   */
  describe('each role grants exactly what its function calls', () => {
    let drive: DriveResult;
    beforeAll(async () => {
      drive = await driveFunctions(template);
    }, 240_000);

    it('drives every function of the template, each payment accepted', () => {
      expect(drive.undriven).toEqual([]);
      expect(drive.serverErrors).toEqual([]);
    });

    it('grants every action each function calls, and nothing it never calls', () => {
      const { functions, problems } = functionGrants(template, (fn) => drive.recorder.callsOf(fn));
      process.stdout.write(`AWS actions each function calls (recorded) and its role grants:\n${grantsTable(functions)}\n`);
      expect(problems, problems.join('\n')).toEqual([]);
      expect(functions.map((f) => f.name).sort()).toEqual(ofType('AWS::Lambda::Function').map(([, f]) => String(f.Properties.FunctionName).replace('paybridge-test-', '')).sort());
    });

    it('the comparison fails on a missing grant and on one never used', () => {
      const broken = structuredClone(template);
      const sweepStatements = statements(broken.Resources.SweepRole) as Json[];
      for (const st of sweepStatements) st.Action = [st.Action].flat().filter((a: string) => a !== 'dynamodb:BatchGetItem');
      addStatement(broken, 'GetPaymentRole', { Effect: 'Allow', Action: ['dynamodb:DeleteItem'], Resource: { 'Fn::GetAtt': ['RecordsTable', 'Arn'] } });
      // A worker held to its records and limiter only: its fences are then outside what it may touch.
      for (const st of statements(broken.Resources.RetryBrpRole)) if (st.Condition) st.Condition['ForAllValues:StringLike']['dynamodb:LeadingKeys'] = ['brp#*', 'limiter#brp'];
      const { problems } = functionGrants(broken, (fn) => drive.recorder.callsOf(fn));
      expect(problems).toContain('sweep: calls dynamodb:BatchGetItem, which SweepRole does not grant (AccessDenied in AWS)');
      expect(problems).toContain('getPayment: GetPaymentRole grants dynamodb:DeleteItem, which the function never calls');
      expect(problems).toContain("retryBrp: calls dynamodb:UpdateItem on fence#…, outside what RetryBrpRole's dynamodb:LeadingKeys admit (AccessDenied in AWS)");
      expect(problems.filter((p) => p.startsWith('retryBrp: calls dynamodb:') && !p.includes(' on fence#…'))).toEqual([]);
    });
  });

  it('sends events out through the stream, a pipe with a retry limit and a DLQ, the stage bus and a delivery function granted only what it uses (issue 21)', () => {
    const table = ofType('AWS::DynamoDB::Table')[0]?.[1] as Json;
    expect(table.Properties.StreamSpecification).toEqual({ StreamViewType: 'NEW_IMAGE' });
    expect(table.Properties.GlobalSecondaryIndexes.map((i: Json) => i.IndexName)).toContain('events-index');
    const [, pipe] = ofType('AWS::Pipes::Pipe')[0] as [string, Json];
    expect(pipe.Properties.Source).toEqual({ 'Fn::GetAtt': ['RecordsTable', 'StreamArn'] });
    const stream = pipe.Properties.SourceParameters.DynamoDBStreamParameters;
    expect(stream.MaximumRetryAttempts).toBeGreaterThan(0);
    expect(stream.MaximumRetryAttempts).toBeLessThanOrEqual(10);
    const dlq = resources[stream.DeadLetterConfig.Arn['Fn::GetAtt'][0]] as Json;
    expect(dlq.Type).toBe('AWS::SQS::Queue');
    expect(JSON.parse(pipe.Properties.SourceParameters.FilterCriteria.Filters[0].Pattern)).toEqual({ dynamodb: { NewImage: { eventNew: { S: [{ exists: true }] } } } });
    // Only the event's own fields reach the bus: nothing of the request (personal data).
    expect(pipe.Properties.TargetParameters.InputTemplate).not.toMatch(/request|caller|history|result/);
    // Nor the record's key, which holds the personId for a NIF natural key (test/integration/event-bus.test.ts).
    expect(pipe.Properties.TargetParameters.InputTemplate).not.toMatch(/NewImage\.(pk|key)\./);
    const bus = resources[pipe.Properties.Target['Fn::GetAtt'][0]] as Json;
    expect(bus).toMatchObject({ Type: 'AWS::Events::EventBus', Properties: { Name: 'paybridge-test-events' } });
    const pipeGrants = grants(resources[pipe.Properties.RoleArn['Fn::GetAtt'][0]] as Json);
    expect(pipeGrants).toEqual(
      ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator', 'dynamodb:ListStreams'].map((a) => `${a} on RecordsTable`).concat(['events:PutEvents on EventsBus', `sqs:SendMessage on ${stream.DeadLetterConfig.Arn['Fn::GetAtt'][0]}`]).sort(),
    );
    const dataOnly = (name: string) => grants(roleOf(name)).filter((g) => /^(dynamodb|sqs|events):/.test(g));
    expect(dataOnly('eventDelivery')).toEqual(
      [
        // Its own items (Put among them), and the payment records (read, the mark cleared; never Put): a statement each.
        ...['BatchGetItem', 'BatchGetItem', 'GetItem', 'GetItem', 'PutItem', 'UpdateItem', 'UpdateItem'].map((a) => `dynamodb:${a} on RecordsTable`),
        'dynamodb:Query on ${RecordsTable.Arn}/index/*',
        ...['ChangeMessageVisibility', 'DeleteMessage', 'GetQueueAttributes', 'ReceiveMessage'].map((a) => `sqs:${a} on EventsQueue`),
      ].sort(),
    );
    // Its own items, and the webhook memory of a signed request (Put, Update on webhook#*, as the read routes).
    expect(dataOnly('eventEndpoints')).toEqual([...['BatchGetItem', 'DeleteItem', 'GetItem', 'PutItem', 'PutItem', 'UpdateItem'].map((a) => `dynamodb:${a} on RecordsTable`), 'dynamodb:Query on ${RecordsTable.Arn}/index/*'].sort());
    const rule = ofType('AWS::Events::Rule').find(([, r]) => r.Properties.EventBusName)?.[1] as Json;
    expect(rule.Properties.Targets[0].Arn).toEqual({ 'Fn::GetAtt': ['EventsQueue', 'Arn'] });
  });

  it('puts the console\'s routes behind its own REQUEST authorizer without caching, and no API key (operators have none)', () => {
    const consoleMethods = ofType('AWS::ApiGateway::Method').filter(([, m]) => JSON.stringify(m.Properties.Integration.Uri).includes('"ConsoleLambdaFunction"'));
    expect(packagedRoutes(resources).filter((r) => r.includes(' /console')).sort()).toEqual(['console GET /console', 'console GET /console/{proxy+}', 'console POST /console/{proxy+}']);
    expect(consoleMethods).toHaveLength(3);
    for (const [, m] of consoleMethods) expect(m.Properties).toMatchObject({ AuthorizationType: 'CUSTOM', AuthorizerId: { Ref: 'ConsoleAuthorizeApiGatewayAuthorizer' }, ApiKeyRequired: false });
    const authorizer = resources.ConsoleAuthorizeApiGatewayAuthorizer as Json;
    expect(authorizer.Properties).toMatchObject({ Type: 'REQUEST', AuthorizerResultTtlInSeconds: 0, AuthorizerUri: { 'Fn::Join': ['', expect.arrayContaining([{ 'Fn::GetAtt': ['ConsoleAuthorizeLambdaFunction', 'Arn'] }])] } });
    // No identity source: the page and the sign-in carry no cookie yet, and must still reach the authorizer.
    expect(authorizer.Properties.IdentitySource).toBeUndefined();
    expect(fn('consoleAuthorize').Properties.Environment.Variables).toEqual({ LOG_LEVEL: 'info', OPERATOR_KEYS_PARAMETER: '/paybridge/test/console/OPERATOR_KEYS', LOG_HASH_KEY_PARAMETER: '/paybridge/test/common/LOG_HASH_KEY' });
    expect(fn('console').Properties.Environment.Variables.SECRETS_PARAMETER_PATHS).toBe('/paybridge/test/common,/paybridge/test/console');
  });

  it('puts every route behind the REQUEST authorizer without caching, with an API key required, and a usage plan per caller', () => {
    const callerMethods = ofType('AWS::ApiGateway::Method').filter(([, m]) => !JSON.stringify(m.Properties.Integration.Uri).includes('"ConsoleLambdaFunction"'));
    expect(callerMethods).toHaveLength(HTTP_ROUTES.length);
    for (const [, m] of callerMethods) expect(m.Properties).toMatchObject({ AuthorizationType: 'CUSTOM', AuthorizerId: { Ref: 'AuthorizeApiGatewayAuthorizer' }, ApiKeyRequired: true });
    const authorizer = resources.AuthorizeApiGatewayAuthorizer as Json;
    expect(authorizer.Properties).toMatchObject({ Type: 'REQUEST', AuthorizerResultTtlInSeconds: 0 });
    // Identity sources would make API Gateway refuse a request lacking either kind of credential before the authorizer runs.
    expect(authorizer.Properties.IdentitySource).toBeUndefined();
    expect((resources.ApiGatewayRestApi as Json).Properties.ApiKeySourceType).toBe('AUTHORIZER');
    const plans = ofType('AWS::ApiGateway::UsagePlan').map(([, p]) => p.Properties);
    expect(plans.map((p) => p.UsagePlanName).sort()).toEqual(['paybridge-Pos-test', 'paybridge-Webhooks-test']);
    // The webhooks' plan has a throttle and no quota (issue 20, item 6: made-up webhook headers reach it).
    for (const p of plans) expect(p.Throttle.RateLimit > 0 && (p.UsagePlanName === 'paybridge-Webhooks-test' ? p.Quota === undefined : p.Quota.Limit > 0)).toBe(true);
    const keys = ofType('AWS::ApiGateway::ApiKey').map(([, k]) => k.Properties.Value).sort();
    const env = fn('authorize').Properties.Environment.Variables;
    expect(keys).toEqual([...env.CALLERS.split(','), 'webhooks'].map((c: string) => `${env.USAGE_KEY_PREFIX}${c}`).sort());
    expect(ofType('AWS::ApiGateway::UsagePlanKey')).toHaveLength(plans.length);
  });

  it('requires LOG_HASH_KEY in Parameter Store at deploy time, and creates the WAF unless told not to', () => {
    expect(template.Parameters.LogHashKeyParameter).toMatchObject({ Type: 'AWS::SSM::Parameter::Name', Default: '/paybridge/test/common/LOG_HASH_KEY' });
    expect(template.Parameters.WafParameter.Default).toBe('true');
    expect(template.Conditions.WafEnabled).toEqual({ 'Fn::Equals': [{ Ref: 'WafParameter' }, 'true'] });
    const waf = ofType('AWS::WAFv2::WebACL').concat(ofType('AWS::WAFv2::WebACLAssociation'), ofType('AWS::WAFv2::LoggingConfiguration'), [['WafLogGroup', resources.WafLogGroup as Json]]);
    expect(waf.map(([, r]) => r.Condition)).toEqual(['WafEnabled', 'WafEnabled', 'WafEnabled', 'WafEnabled']);
    const [perIp, webhooks] = (resources.WebAcl as Json).Properties.Rules as Json[];
    expect(perIp?.Statement.RateBasedStatement).toMatchObject({ AggregateKeyType: 'IP', Limit: 2000 });
    // Issue 20, item 6: webhook requests apart, at the documented rate (docs/security.md).
    expect(webhooks?.Statement.RateBasedStatement).toMatchObject({ AggregateKeyType: 'IP', Limit: 300, EvaluationWindowSec: 300, ScopeDownStatement: { SizeConstraintStatement: { FieldToMatch: { SingleHeader: { Name: 'webhook-signature' } }, ComparisonOperator: 'GT', Size: 0 } } });
    expect(readFileSync(new URL('../../docs/security.md', import.meta.url), 'utf8')).toMatch(/300 webhook requests per address in any 5 minutes/);
    const plan = ofType('AWS::ApiGateway::UsagePlan').find(([, p]) => p.Properties.UsagePlanName === 'paybridge-Webhooks-test')?.[1] as Json;
    expect(plan.Properties.Throttle).toEqual({ RateLimit: 50, BurstLimit: 100 });
    expect(plan.Properties.Quota).toBeUndefined();
    // Issue 20, item 11: the WAF log keeps no key, no patient and no path; the alarm topic is encrypted with a key CloudWatch may use.
    expect((resources.WafLogging as Json).Properties.RedactedFields).toEqual([
      { SingleHeader: { Name: 'x-api-key' } }, { SingleHeader: { Name: 'patient' } }, { UriPath: {} }, { QueryString: {} }, { SingleHeader: { Name: 'cookie' } }, { SingleHeader: { Name: 'x-csrf-token' } },
    ]);
    expect((resources.WafLogGroup as Json).Properties.LogGroupName).toMatch(/^aws-waf-logs-/);
    expect((resources.AlarmTopic as Json).Properties.KmsMasterKeyId).toEqual({ Ref: 'AlarmTopicKey' });
    const keyPolicy = (resources.AlarmTopicKey as Json).Properties.KeyPolicy.Statement as Json[];
    expect(keyPolicy.find((st) => st.Principal.Service === 'cloudwatch.amazonaws.com')?.Action).toEqual(['kms:Decrypt', 'kms:GenerateDataKey*']);
  });

  it('alarms on any DLQ, unknown payments, holds over an hour and retry age', () => {
    const alarms = ofType('AWS::CloudWatch::Alarm').map(([, a]) => a.Properties);
    expect(alarms.map((a) => a.MetricName ?? 'dlq').sort()).toEqual(['EventEndpointsDisabled-test', 'dlq', 'held_over_an_hour', 'oldest_overdue_age', 'unknown']);
    const dlq = alarms.find((a) => a.Metrics) as Json;
    const watched = dlq.Metrics.filter((m: Json) => m.MetricStat).map((m: Json) => m.MetricStat.Metric.Dimensions[0].Value['Fn::GetAtt'][0]);
    const dlqs = ofType('AWS::SQS::Queue').filter(([, q]) => !q.Properties.RedrivePolicy).map(([id]) => id);
    expect(watched.sort()).toEqual(dlqs.sort());
    expect(dlq.Metrics.filter((m: Json) => m.ReturnData)).toHaveLength(1);
  });
});
