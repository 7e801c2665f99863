/**
 * Issue 20, item 2: what each function's IAM role grants against what the function calls. No role granted
 * dynamodb:BatchGetItem although the sweep, the workers and the listings call it: in AWS every one of
 * those calls would have failed with AccessDenied, while every local test passed (dynalite checks no IAM).
 * test/integration/template.test.ts records every AWS call each function makes (test/helpers/drive-functions.ts)
 * and hands it here with the packaged template; an action called but not granted, or granted but never
 * called, is a problem.
 */

type Json = Record<string, any>;

const asList = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
const targetOf = (v: any): string | undefined => v?.Ref ?? v?.['Fn::GetAtt']?.[0];

/**
 * Actions a role needs that no code of the function calls, each with the reason. Nothing else is exempt:
 * a granted action for a path the drive does not reach gets a scenario there, not an entry here.
 */
export const EXEMPT: { actions: string[]; when: (fn: { consumesQueue: boolean; postsPayments: boolean }) => boolean; why: string }[] = [
  { actions: ['logs:CreateLogStream', 'logs:PutLogEvents'], when: () => true, why: 'the Lambda service writes the function’s own logs with its role' },
  {
    actions: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueAttributes'],
    when: (fn) => fn.consumesQueue,
    why: 'Lambda’s SQS event source mapping polls, deletes and extends messages with the function’s role',
  },
  {
    actions: ['dynamodb:Query'],
    when: (fn) => fn.postsPayments,
    // Only for the unused direction: a Query called but not granted still fails.
    why: 'a payment route or worker queries the due index only when its own send ends an outage (wakeWaiting), which needs a send slot in time; on a busy machine the drive does not always get one',
  },
];

/** IAM's StringLike: `*` any run of characters, `?` one. */
const like = (pattern: string) => new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);

export interface FunctionGrants {
  /** serverless.yml's name of the function. */
  name: string;
  role: string;
  used: string[];
  granted: string[];
  exempt: string[];
}

/** Per function: the actions it called (from the recording), those its role grants, and those exempt above. */
export function functionGrants(template: Json, callsOf: (fn: string) => { action: string; keys: string[] }[]): { functions: FunctionGrants[]; problems: string[] } {
  const resources = (template.Resources ?? {}) as Record<string, Json>;
  const stage = resources.ApiGatewayStage?.Properties?.StageName as string;
  const problems: string[] = [];
  const functions: FunctionGrants[] = [];
  for (const [id, fn] of Object.entries(resources).filter(([, r]) => r.Type === 'AWS::Lambda::Function')) {
    const name = String(fn.Properties?.FunctionName).replace(`paybridge-${stage}-`, '');
    const roleId = targetOf(fn.Properties?.Role);
    const role = roleId ? resources[roleId] : undefined;
    if (!roleId || role?.Type !== 'AWS::IAM::Role') {
      problems.push(`${name}: its role is not an IAM role of this template, so what it grants cannot be read`);
      continue;
    }
    if (asList(role.Properties?.ManagedPolicyArns).length > 0) problems.push(`${name}: ${roleId} has managed policies, whose actions this check cannot read`);
    const granted = new Set<string>();
    /** Per action, the leading-key patterns of each statement granting it (undefined: any item). */
    const itemsOf = new Map<string, (RegExp[] | undefined)[]>();
    for (const policy of asList<Json>(role.Properties?.Policies)) {
      for (const st of asList<Json>(policy.PolicyDocument?.Statement)) {
        if (st.Effect !== 'Allow') continue;
        const patterns = st.Condition?.['ForAllValues:StringLike']?.['dynamodb:LeadingKeys'];
        for (const a of asList<string>(st.Action)) {
          granted.add(a);
          itemsOf.set(a, [...(itemsOf.get(a) ?? []), patterns === undefined ? undefined : asList<string>(patterns).map(like)]);
        }
      }
    }
    const consumesQueue = Object.values(resources).some((m) => m.Type === 'AWS::Lambda::EventSourceMapping' && targetOf(m.Properties?.FunctionName) === id);
    const env = fn.Properties?.Environment?.Variables ?? {};
    const routed = Object.values(resources).some((m) => m.Type === 'AWS::ApiGateway::Method' && JSON.stringify(m.Properties?.Integration?.Uri ?? '').includes(`"${id}"`));
    const exempt = new Set(EXEMPT.filter((e) => e.when({ consumesQueue, postsPayments: (routed || consumesQueue) && env.RETRY_QUEUE_URL !== undefined })).flatMap((e) => e.actions));
    const made = callsOf(name);
    const calls = [...new Set(made.map((c) => c.action))].sort();
    // Item 11: each key a call named must be one its role's leading-key condition admits for that action.
    const outside = new Set<string>();
    for (const c of made) {
      const statements = itemsOf.get(c.action) ?? [];
      for (const k of c.keys) if (statements.length > 0 && !statements.some((p) => p === undefined || p.some((re) => re.test(k)))) outside.add(`${c.action} on ${k.slice(0, k.indexOf('#') + 1)}…`);
    }
    for (const o of [...outside].sort()) problems.push(`${name}: calls ${o}, outside what ${roleId}'s dynamodb:LeadingKeys admit (AccessDenied in AWS)`);
    for (const a of calls) if (!granted.has(a)) problems.push(`${name}: calls ${a}, which ${roleId} does not grant (AccessDenied in AWS)`);
    for (const a of [...granted].sort()) if (!calls.includes(a) && !exempt.has(a)) problems.push(`${name}: ${roleId} grants ${a}, which the function never calls`);
    functions.push({ name, role: roleId, used: calls, granted: [...granted].sort(), exempt: [...exempt].filter((a) => granted.has(a) && !calls.includes(a)).sort() });
  }
  return { functions, problems };
}

/** The per-function table `npm test` prints: what it calls, and what its role grants beyond that (exempt). */
export function grantsTable(functions: FunctionGrants[]): string {
  const width = Math.max(...functions.map((f) => f.name.length));
  return functions
    .map((f) => `${f.name.padEnd(width)}  calls: ${f.used.join(' ') || '(nothing)'}${f.exempt.length ? `  |  also granted, exempt (test/template/grants.ts): ${f.exempt.join(' ')}` : ''}`)
    .join('\n');
}
