/**
 * Issue 12's hardening, checked on the packaged CloudFormation template (what `serverless deploy`
 * would upload), independently of the code that generates it (shared/aws/stack.ts):
 *
 * - every API method has an authorizer or requires an API key;
 * - no IAM statement has a wildcard action, and none gives SSM or DynamoDB actions a wildcard resource;
 * - no two functions share a role, and each reads only the common SSM path and its own system's (the
 *   console: its own group);
 * - the stage has default throttling and a JSON access log, and is the one the deployment publishes;
 * - every queue and the table are encrypted; the table has point-in-time recovery and deletion protection;
 * - each worker's timeout is shorter than LEASE_SECONDS, its concurrency is reserved (and its event
 *   source's maximum no higher), and its queue's visibility timeout is at least 6x its timeout.
 *
 * And issue 20's (docs/security.md, "AWS: what the template grants"):
 * - every DynamoDB grant is held to the items of its function by `dynamodb:LeadingKeys` (no table-wide one);
 * - every SNS topic is encrypted;
 * - the WAF is on by default, with a per-address rule on webhook requests; its sampled requests are off and
 *   its log redacts x-api-key, patient, the console's cookie and CSRF token, the path and the query;
 * - the webhooks' usage plan (the one reached without a verified credential) has no quota to exhaust.
 *
 *   tsx test/template/policy.ts .serverless/cloudformation-template-update-stack.json
 */
import { readFileSync } from 'node:fs';

type Json = Record<string, any>;

/** SSM groups as the README's layout states them: the three NIF systems share `nif`. */
const ssmGroupOf = (system: string) => (system.startsWith('nif') ? 'nif' : system);

const asList = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** The text of a resource ARN as written: a plain string, or the template of a Fn::Sub. */
function arnText(resource: unknown): string | undefined {
  if (typeof resource === 'string') return resource;
  const r = resource as Json;
  if (typeof r?.['Fn::Sub'] === 'string') return r['Fn::Sub'];
  if (Array.isArray(r?.['Fn::Sub']) && typeof r['Fn::Sub'][0] === 'string') return r['Fn::Sub'][0];
  return undefined;
}

/** The logical id a `Ref`/`Fn::GetAtt` points at, if the value is one. */
function target(value: unknown): string | undefined {
  const v = value as Json;
  if (typeof v?.Ref === 'string') return v.Ref;
  const att = v?.['Fn::GetAtt'];
  if (Array.isArray(att)) return att[0];
  if (typeof att === 'string') return att.split('.')[0];
  return undefined;
}

export function checkPolicy(template: Json): string[] {
  const problems: string[] = [];
  const resources = (template.Resources ?? {}) as Record<string, Json>;
  const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);

  for (const [id, m] of ofType('AWS::ApiGateway::Method')) {
    const p = m.Properties ?? {};
    const authorized = p.AuthorizationType && p.AuthorizationType !== 'NONE' && (p.AuthorizationType !== 'CUSTOM' || p.AuthorizerId);
    if (!authorized && p.ApiKeyRequired !== true) problems.push(`${id}: method has neither an authorizer nor a required API key`);
  }

  const functions = ofType('AWS::Lambda::Function');
  const roleOwners = new Map<string, string[]>();
  for (const [id, fn] of functions) {
    const role = target(fn.Properties?.Role);
    if (!role) {
      problems.push(`${id}: no role of its own in this template`);
      continue;
    }
    roleOwners.set(role, [...(roleOwners.get(role) ?? []), id]);
  }
  for (const [role, owners] of roleOwners) if (owners.length > 1) problems.push(`${role}: shared by ${owners.sort().join(', ')}`);

  // The stage's SSM prefix, from the stage resource rather than from anything the generator computed.
  const stageName = ofType('AWS::ApiGateway::Stage')[0]?.[1].Properties?.StageName;
  const prefix = `/paybridge/${String(stageName)}`;
  for (const [id, role] of ofType('AWS::IAM::Role')) {
    const owner = functions.find(([, fn]) => target(fn.Properties?.Role) === id);
    const env = (owner?.[1].Properties?.Environment?.Variables ?? {}) as Json;
    // What the function is told it may read, which must be what its role allows, and no more than common + one group.
    const paths: string[] = env.SECRETS_PARAMETER_PATHS ? String(env.SECRETS_PARAMETER_PATHS).split(',') : [];
    // Single parameters a function is told to read by name (API_KEYS_PARAMETER, the console authorizer's two).
    const single: string[] = Object.entries(env).filter(([k, v]) => k.endsWith('_PARAMETER') && typeof v === 'string').map(([, v]) => String(v));
    const queue = target(env.RETRY_QUEUE_URL);
    const system = queue ? String(resources[queue]?.Properties?.QueueName ?? '').match(/-retry-([a-z-]+)$/)?.[1] : undefined;
    // The operator console reads its own group (OPERATOR_KEYS) beside common; no payment function may.
    const isConsole = owner?.[1].Properties?.Handler === 'functions/console.handler';
    if (owner && paths.length > 0) {
      const expected = [`${prefix}/common`, ...(system ? [`${prefix}/${ssmGroupOf(system)}`] : []), ...(isConsole ? [`${prefix}/console`] : [])];
      for (const p of paths) if (!expected.includes(p)) problems.push(`${id}: reads SSM path ${p}, not only ${expected.join(' and ')}`);
    }
    for (const [pi, policy] of asList(role.Properties?.Policies).entries()) {
      for (const [si, st] of asList(policy.PolicyDocument?.Statement).entries()) {
        const where = `${id} policy ${pi} statement ${si}`;
        const actions = asList<string>(st.Action);
        for (const a of actions) if (a.includes('*')) problems.push(`${where}: wildcard action ${a}`);
        if (st.NotAction || st.NotResource) problems.push(`${where}: NotAction/NotResource`);
        const data = actions.filter((a) => /^(ssm|dynamodb):/i.test(a));
        const kms = actions.filter((a) => /^kms:/i.test(a));
        for (const r of asList(st.Resource)) {
          const text = arnText(r);
          if (text === '*' && (data.length > 0 || kms.length > 0)) problems.push(`${where}: ${[...data, ...kms].join(', ')} on every resource (*)`);
          if (text && text !== '*' && data.some((a) => a.startsWith('dynamodb:')) && text.replace(/\/index\/\*$/, '').includes('*')) problems.push(`${where}: DynamoDB resource with a wildcard: ${text}`);
          if (text && text !== '*' && data.some((a) => a.startsWith('ssm:'))) {
            const name = text.match(/:parameter(\/.*)$/)?.[1];
            const allowed = [...paths.flatMap((p) => [p, `${p}/*`]), ...single];
            if (!name || !allowed.includes(name)) problems.push(`${where}: SSM resource ${text} is outside what its function reads (${allowed.join(', ') || 'nothing'})`);
          } else if (data.some((a) => a.startsWith('ssm:')) && text === undefined) problems.push(`${where}: SSM resource that is not a written ARN`);
        }
        if (kms.length > 0 && !JSON.stringify(st.Condition ?? {}).includes('kms:ViaService')) problems.push(`${where}: ${kms.join(', ')} without a kms:ViaService condition`);
        // A table's stream (the events pipe, issue 21) is read by shard, not by item: no leading keys apply.
        const streamOnly = actions.every((a) => /^dynamodb:(DescribeStream|GetRecords|GetShardIterator|ListStreams)$/.test(a));
        if (actions.some((a) => a.startsWith('dynamodb:')) && !streamOnly) {
          const keys = asList<string>(st.Condition?.['ForAllValues:StringLike']?.['dynamodb:LeadingKeys']);
          if (keys.length === 0) problems.push(`${where}: ${actions.join(', ')} on every item (no ForAllValues:StringLike dynamodb:LeadingKeys condition)`);
          for (const k of keys) if (typeof k !== 'string' || k.startsWith('*') || k.startsWith('?')) problems.push(`${where}: leading key pattern ${String(k)} matches items of every kind`);
        }
      }
    }
  }

  const stages = ofType('AWS::ApiGateway::Stage');
  const deployments = ofType('AWS::ApiGateway::Deployment');
  if (stages.length !== 1) problems.push(`expected one API Gateway stage resource, found ${stages.length}`);
  for (const [id, d] of deployments) if (d.Properties?.StageName) problems.push(`${id}: the deployment creates stage ${d.Properties.StageName} itself, without the stage resource's settings`);
  for (const [id, s] of stages) {
    const p = s.Properties ?? {};
    if (!deployments.some(([d]) => target(p.DeploymentId) === d)) problems.push(`${id}: not bound to the template's deployment`);
    const all = asList<Json>(p.MethodSettings).find((m) => m.ResourcePath === '/*' && m.HttpMethod === '*');
    if (!(all?.ThrottlingRateLimit > 0 && all?.ThrottlingBurstLimit > 0)) problems.push(`${id}: no default throttling (MethodSettings /* *)`);
    const log = p.AccessLogSetting ?? {};
    if (!target(log.DestinationArn) || resources[target(log.DestinationArn) as string]?.Type !== 'AWS::Logs::LogGroup') problems.push(`${id}: no access log group`);
    const format = String(log.Format ?? '');
    let json = false;
    try {
      json = typeof JSON.parse(format.replace(/\$context\.[\w.]+/g, '0')) === 'object';
    } catch {
      json = false;
    }
    if (!json || !format.includes('$context.requestId')) problems.push(`${id}: access log format is not JSON with $context.requestId`);
  }

  for (const [id, t] of ofType('AWS::SNS::Topic')) if (!t.Properties?.KmsMasterKeyId) problems.push(`${id}: topic not encrypted (KmsMasterKeyId)`);

  const waf = template.Parameters?.WafParameter;
  if (waf && waf.Default !== 'true') problems.push(`WafParameter: the WAF is off by default (${String(waf.Default)})`);
  for (const [id, acl] of ofType('AWS::WAFv2::WebACL')) {
    const rules = asList<Json>(acl.Properties?.Rules);
    const sampled = [acl.Properties?.VisibilityConfig, ...rules.map((r) => r.VisibilityConfig)].some((v) => v?.SampledRequestsEnabled !== false);
    if (sampled) problems.push(`${id}: sampled requests are on (they show every header unredacted)`);
    const webhookRule = rules.find((r) => JSON.stringify(r.Statement?.RateBasedStatement?.ScopeDownStatement ?? {}).includes('"webhook-signature"'));
    if (!(webhookRule?.Statement?.RateBasedStatement?.Limit > 0) || !('Block' in (webhookRule?.Action ?? {}))) problems.push(`${id}: no rate-based rule blocking webhook requests per address`);
    const logging = ofType('AWS::WAFv2::LoggingConfiguration').find(([, l]) => target(l.Properties?.ResourceArn) === id)?.[1];
    const redacted = asList<Json>(logging?.Properties?.RedactedFields);
    const header = (name: string) => redacted.some((f) => String(f.SingleHeader?.Name ?? '').toLowerCase() === name);
    if (!logging) problems.push(`${id}: no logging configuration`);
    else {
      // cookie and x-csrf-token: the console's session and its CSRF token (issue 22), credentials like the key.
      for (const h of ['x-api-key', 'patient', 'cookie', 'x-csrf-token']) if (!header(h)) problems.push(`${id}: the WAF log does not redact the ${h} header`);
      if (!redacted.some((f) => f.UriPath)) problems.push(`${id}: the WAF log does not redact the path`);
    }
  }
  // The webhooks' plan: its key is the one the authorizer hands to any request with webhook headers.
  for (const [id, planKey] of ofType('AWS::ApiGateway::UsagePlanKey')) {
    const key = resources[target(planKey.Properties?.KeyId) as string];
    if (!String(key?.Properties?.Value ?? '').endsWith('-usage-key-webhooks')) continue;
    const plan = resources[target(planKey.Properties?.UsagePlanId) as string];
    if (plan?.Properties?.Quota) problems.push(`${target(planKey.Properties?.UsagePlanId)}: the webhooks' plan has a quota, which made-up webhook headers can exhaust for every terminal (${id})`);
  }

  for (const [id, q] of ofType('AWS::SQS::Queue')) if (q.Properties?.SqsManagedSseEnabled !== true && !q.Properties?.KmsMasterKeyId) problems.push(`${id}: queue not encrypted`);
  for (const [id, t] of ofType('AWS::DynamoDB::Table')) {
    const p = t.Properties ?? {};
    if (p.SSESpecification?.SSEEnabled !== true) problems.push(`${id}: table not encrypted with KMS (SSESpecification)`);
    if (p.PointInTimeRecoverySpecification?.PointInTimeRecoveryEnabled !== true) problems.push(`${id}: no point-in-time recovery`);
    if (p.DeletionProtectionEnabled !== true) problems.push(`${id}: no deletion protection`);
  }

  for (const [id, mapping] of ofType('AWS::Lambda::EventSourceMapping')) {
    const fnId = target(mapping.Properties?.FunctionName);
    const queueId = target(mapping.Properties?.EventSourceArn);
    const fn = fnId ? resources[fnId] : undefined;
    const queue = queueId ? resources[queueId] : undefined;
    if (!fn || queue?.Type !== 'AWS::SQS::Queue') continue;
    const timeout = Number(fn.Properties?.Timeout ?? 3);
    const lease = Number(fn.Properties?.Environment?.Variables?.LEASE_SECONDS);
    if (!(timeout < lease)) problems.push(`${fnId}: timeout ${timeout} s is not shorter than LEASE_SECONDS ${lease}`);
    const reserved = fn.Properties?.ReservedConcurrentExecutions;
    if (!(reserved >= 2)) problems.push(`${fnId}: no reserved concurrency`);
    const max = mapping.Properties?.ScalingConfig?.MaximumConcurrency;
    if (!(max >= 2 && max <= reserved)) problems.push(`${id}: maximum concurrency ${max} is not between 2 and the reserved ${reserved}`);
    if (!(queue.Properties?.VisibilityTimeout >= 6 * timeout)) problems.push(`${queueId}: visibility timeout ${queue.Properties?.VisibilityTimeout} s is under 6x ${fnId}'s ${timeout} s`);
    if (!(queue.Properties?.RedrivePolicy?.maxReceiveCount > 0)) problems.push(`${queueId}: no dead-letter queue`);
  }
  return problems;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = process.argv[2] ?? '.serverless/cloudformation-template-update-stack.json';
  const problems = checkPolicy(JSON.parse(readFileSync(file, 'utf8')) as Json);
  for (const p of problems) process.stdout.write(`  ${p}\n`);
  process.stdout.write(`template policy: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n`);
  process.exitCode = problems.length > 0 ? 1 : 0;
}
