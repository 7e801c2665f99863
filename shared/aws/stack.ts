import { PARAMETER_GROUP } from '../config.js';
import { CALLER_NAME, WEBHOOK_CALLER } from '../http/authorizer.js';
import { API_ROUTES, type SystemName } from '../http/routes.js';
import { WORKER_BATCH } from '../queue/port.js';

/**
 * The per-function part of the AWS stack, generated from the one route table and the system list:
 * every function with its events and environment, one IAM role per function, and one retry queue,
 * dead-letter queue and worker per downstream system (issues 12 and 14). serverless.yml pulls these
 * in through shared/aws/serverless.cjs; test/template/policy.ts checks the packaged result.
 *
 * Generated rather than written out because the same facts (which system a function posts to, which
 * queue and SSM group that means) would otherwise be repeated across ~18 functions and roles, and a
 * role drifting from its function is exactly what issue 12 found.
 */

type Json = Record<string, unknown>;

/** SSM groups: `/paybridge/<stage>/<group>/<NAME>`, the same table the functions read at run time. */
export const SSM_GROUP = PARAMETER_GROUP;

/** Every downstream system, in the status route's order. */
export const SYSTEMS = Object.keys(SSM_GROUP) as SystemName[];

/** The application's pacing variable for each system (shared/config.ts); one NIF variable serves each NIF function. */
export const RATE_VARIABLE = {
  cambio: 'CAMBIO_MAX_RPS',
  'nif-membership': 'NIF_MAX_RPS',
  'nif-corporate': 'NIF_MAX_RPS',
  nif: 'NIF_MAX_RPS',
  brp: 'BRP_MAX_RPS',
  kontantanalys: 'KONTANTANALYS_MAX_RPS',
} as const satisfies Record<SystemName, string>;

/** The parameters every function reads: API_KEYS, WEBHOOK_SECRET, LOG_HASH_KEY, RETRY_MESSAGE_KEY (the retry messages' HMAC key: shared/queue/port.ts). */
export const COMMON_GROUP = 'common';

/** A usage plan: API Gateway's steady rate (requests/s), burst and quota. */
export interface Plan {
  rateLimit: number;
  burstLimit: number;
  quota: number;
  period: 'DAY' | 'WEEK' | 'MONTH';
}

/**
 * The webhooks' plan: a throttle and no quota (issue 20, item 6). The authorizer cannot check a webhook
 * signature (it never sees the body), so made-up webhook headers reach this plan: a monthly quota would be
 * a budget anyone could spend for every terminal at once. The WAF's per-address rule on webhook requests
 * keeps one source from taking the throttle (serverless.yml, docs/security.md).
 */
export type Throttle = Pick<Plan, 'rateLimit' | 'burstLimit'>;

/** Deploy-time settings, read from serverless.yml's `custom` (shared/aws/osls.ts). */
export interface StackConfig {
  service: string;
  stage: string;
  tableName: string;
  /** `/paybridge/<stage>`. */
  ssmPrefix: string;
  /** Sends per second each downstream accepts (custom.rates). */
  rates: Record<SystemName, number>;
  /** Named x-api-key callers, each with its own API Gateway key and usage plan. */
  callers: string[];
  callerPlan: Plan;
  callerPlans: Record<string, Partial<Plan>>;
  /** The throttle shared by every webhook-signed request (terminals carry no API key); no quota. */
  webhookPlan: Throttle;
  workerTimeout: number;
  leaseSeconds: number;
  kontantanalysSyncSchedule: string;
}

/** The authorizer function's name (the usage plan of signed webhooks is named in shared/http/authorizer.ts). */
export const AUTHORIZER = 'authorize';

const upperFirst = (s: string) => `${s.charAt(0).toUpperCase()}${s.slice(1)}`;
const pascal = (s: string) => s.split('-').map(upperFirst).join('');

export const workerName = (system: SystemName) => `retry${pascal(system)}`;
export const queueId = (system: SystemName) => `RetryQueue${pascal(system)}`;
export const dlqId = (system: SystemName) => `RetryDlq${pascal(system)}`;
/** osls names a function's log group `<Name>LogGroup` (first letter upper-cased). */
export const logGroupId = (fn: string) => `${upperFirst(fn)}LogGroup`;
export const roleId = (fn: string) => `${upperFirst(fn)}Role`;

/**
 * Reserved concurrency (and the SQS event source's maximum concurrency) for a system's worker: a
 * worker holds a slot for as long as a send takes, so the concurrency a paced backlog needs is its
 * rate times the send time (Little's law). With sends of up to 2 s that is `ceil(rate × 2) + 1`, the
 * one for a batch still being acknowledged; at least 2, the least SQS accepts for maximumConcurrency.
 * More would only wait on the shared limiter while holding messages invisible; fewer would throttle
 * the poller, and throttled receives count towards maxReceiveCount.
 */
export function workerConcurrency(rate: number): number {
  return Math.max(2, Math.ceil(rate * 2) + 1);
}

/** The API Gateway key value that stands for a caller's usage plan (the authorizer returns it; it is not a secret: README, AWS). */
export const usageKey = (cfg: Pick<StackConfig, 'service' | 'stage'>, caller: string) => `${usageKeyPrefix(cfg)}${caller}`;
export const usageKeyPrefix = (cfg: Pick<StackConfig, 'service' | 'stage'>) => `${cfg.service}-${cfg.stage}-usage-key-`;

const sub = (s: string) => ({ 'Fn::Sub': s });
const getAtt = (id: string, attr: string) => ({ 'Fn::GetAtt': [id, attr] });
const ref = (id: string) => ({ Ref: id });

function ssmPaths(cfg: StackConfig, groups: readonly string[]): string[] {
  return groups.map((g) => `${cfg.ssmPrefix}/${g}`);
}

type TableAction = 'dynamodb:GetItem' | 'dynamodb:PutItem' | 'dynamodb:UpdateItem' | 'dynamodb:BatchGetItem';

/**
 * The partition keys of the table's items (shared/store/*), as IAM `dynamodb:LeadingKeys` patterns
 * (issue 20, item 11: a role may touch only its own kinds of item, not the whole table):
 * records `<system>#<tenant>#<key>` (and the indexes' keys, `<system>#<kind or status>#<shard>`, so a
 * Query on an index is held to the same systems), the shared limiter `limiter#<system>`, the webhook ids
 * `webhook#<sender>#<id>` and the fences `fence#<id>`. A fence id names a container, not a system, and a
 * webhook id is one across routes (a replay to another route must be found), so those two are table-wide
 * for the functions that use them. test/integration/template.test.ts checks every key each function
 * touches against these.
 */
export const LEADING_KEYS = {
  records: (system: SystemName) => `${system}#*`,
  limiter: (system: SystemName) => `limiter#${system}`,
  webhooks: 'webhook#*',
  fences: 'fence#*',
  /**
   * Events out (issue 21, shared/events/store.ts): endpoints, events and their deliveries, and the
   * events-index partitions their Queries name (a caller's endpoints and events, an endpoint's due
   * deliveries, the outbox's pending shards).
   */
  events: ['endpoint#*', 'event#*', 'delivery#*', 'endpoints#*', 'events#*', 'due#*', 'pending#*'],
} as const;

/** What one function may touch. Everything a role grants is derived from this, nothing else. */
interface Access {
  /** SSM groups read by path (common always comes first). */
  ssmGroups: string[];
  /** Single parameters (a name under the stage's prefix), read with GetParameters. */
  ssmParameters?: string[];
  table?: TableAction[];
  /**
   * Writes the webhook memory's items only (`webhook#<sender>#<id>`, shared/store/webhooks.ts): a read
   * route remembers each signed GET (issue 20 item 8) without being able to write a record.
   */
  webhookMemory?: boolean;
  /** Query on the table's indexes (due-index, status-index). */
  queryIndexes?: boolean;
  /** Items it may delete, by leading key (a caller's event endpoints only): a statement of its own. */
  deletes?: string[];
  /** Items it may only read (BatchGetItem, and Query on the indexes), beside those `leadingKeys` grants. */
  readKeys?: string[];
  /** The items it may touch (LEADING_KEYS): required with `table` or `queryIndexes`. */
  leadingKeys?: string[];
  /**
   * Fewer table actions on other items, a statement each (ForAllValues holds per statement: one call never
   * mixes the two kinds): the event delivery function reads payment records and clears their pending mark,
   * but writes only its own items whole.
   */
  alsoItems?: { table: TableAction[]; leadingKeys: string[] }[];
  /** Queues it may send to. */
  sendTo?: SystemName[];
  /** The queue its SQS event source consumes. */
  consume?: SystemName;
  /** Queues whose attributes (depth, age) it reads. */
  readAttributes?: SystemName[];
  /** Consumes the events queue the bus's rule fills (events out, issue 21). */
  consumeEvents?: boolean;
}

function role(cfg: StackConfig, fn: string, access: Access): Json {
  const statements: Json[] = [
    // Its own log group only (the LogGroup's Arn attribute already ends in `:*`, the streams).
    { Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: getAtt(logGroupId(fn), 'Arn') },
  ];
  if (access.ssmGroups.length > 0) {
    // Powertools reads each group with GetParametersByPath only (shared/secrets.ts): the path, and its children
    // (the parameters it returns); no other group. SecureStrings use the account's aws/ssm key, whose key policy
    // already admits SSM calls from this account: no kms:Decrypt here.
    statements.push({
      Effect: 'Allow',
      Action: ['ssm:GetParametersByPath'],
      Resource: ssmPaths(cfg, access.ssmGroups).flatMap((p) => [sub(`arn:\${AWS::Partition}:ssm:\${AWS::Region}:\${AWS::AccountId}:parameter${p}`), sub(`arn:\${AWS::Partition}:ssm:\${AWS::Region}:\${AWS::AccountId}:parameter${p}/*`)]),
    });
  }
  if (access.ssmParameters?.length) {
    statements.push({ Effect: 'Allow', Action: ['ssm:GetParameters'], Resource: access.ssmParameters.map((n) => sub(`arn:\${AWS::Partition}:ssm:\${AWS::Region}:\${AWS::AccountId}:parameter${cfg.ssmPrefix}/${n}`)) });
  }
  if ((access.table?.length || access.queryIndexes) && !access.leadingKeys?.length) throw new Error(`${fn}: table access without leading keys`);
  // ForAllValues: every key a request names (all of a BatchGetItem's) must match one of the patterns.
  const items = { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': access.leadingKeys } };
  if (access.table?.length) statements.push({ Effect: 'Allow', Action: access.table, Resource: getAtt('RecordsTable', 'Arn'), Condition: items });
  for (const also of access.alsoItems ?? []) {
    statements.push({ Effect: 'Allow', Action: also.table, Resource: getAtt('RecordsTable', 'Arn'), Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': also.leadingKeys } } });
  }
  if (access.queryIndexes) statements.push({ Effect: 'Allow', Action: ['dynamodb:Query'], Resource: sub('${RecordsTable.Arn}/index/*'), Condition: items });
  if (access.readKeys?.length) {
    const read = { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': access.readKeys } };
    statements.push({ Effect: 'Allow', Action: ['dynamodb:BatchGetItem'], Resource: getAtt('RecordsTable', 'Arn'), Condition: read });
    statements.push({ Effect: 'Allow', Action: ['dynamodb:Query'], Resource: sub('${RecordsTable.Arn}/index/*'), Condition: read });
  }
  if (access.deletes?.length) {
    statements.push({ Effect: 'Allow', Action: ['dynamodb:DeleteItem'], Resource: getAtt('RecordsTable', 'Arn'), Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': access.deletes } } });
  }
  if (access.webhookMemory) {
    statements.push({
      Effect: 'Allow',
      Action: ['dynamodb:PutItem', 'dynamodb:UpdateItem'],
      Resource: getAtt('RecordsTable', 'Arn'),
      Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['webhook#*'] } },
    });
  }
  if (access.consume) {
    statements.push({ Effect: 'Allow', Action: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueAttributes'], Resource: getAtt(queueId(access.consume), 'Arn') });
  }
  if (access.sendTo?.length) statements.push({ Effect: 'Allow', Action: ['sqs:SendMessage'], Resource: access.sendTo.map((s) => getAtt(queueId(s), 'Arn')) });
  if (access.consumeEvents) {
    statements.push({ Effect: 'Allow', Action: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueAttributes'], Resource: getAtt(EVENTS_QUEUE, 'Arn') });
  }
  if (access.readAttributes?.length) statements.push({ Effect: 'Allow', Action: ['sqs:GetQueueAttributes'], Resource: access.readAttributes.map((s) => getAtt(queueId(s), 'Arn')) });
  return {
    Type: 'AWS::IAM::Role',
    Properties: {
      Description: `${cfg.service} ${cfg.stage}: ${fn} only`,
      AssumeRolePolicyDocument: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }] },
      Policies: [{ PolicyName: fn, PolicyDocument: { Version: '2012-10-17', Statement: statements } }],
    },
  };
}

interface FunctionSpec {
  definition: Json;
  access: Access;
}

/**
 * The table actions each kind of function calls, as test/integration/template.test.ts records them (issue 20,
 * item 2): a payment route claims and settles (Put, Get; Update for webhook ids) and, when a send ends an
 * outage, finds the waiting payments on the due index; a worker also reads records named only by their
 * message (wake-ups, probes: BatchGetItem) and consumes fences (Update); the sweep and the Kontantanalys run
 * read pages of records (BatchGetItem) found on the indexes and write records, never fences or webhook ids.
 */
const ROUTE_TABLE: TableAction[] = ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'];
const WORKER_TABLE: TableAction[] = ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:BatchGetItem'];
const SCHEDULED_TABLE: TableAction[] = ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:BatchGetItem'];

/** Events out (issue 21): the queue between the bus and the delivery function, and its dead letters. */
export const EVENTS_QUEUE = 'EventsQueue';
const EVENTS_QUEUE_DLQ = 'EventsQueueDlq';
const EVENTS_PIPE_DLQ = 'EventsPipeDlq';
/**
 * The delivery function's timeout (a 15 s attempt per endpoint side by side, a few per endpoint), shorter
 * than LEASE_SECONDS like every queue consumer's, and its concurrency: enough for bursts, few enough that
 * the endpoints' own pacing is not spread over many containers.
 */
const EVENT_DELIVERY_TIMEOUT = 60;
const EVENT_DELIVERY_CONCURRENCY = 5;

/** The application's environment: the SSM groups it may read come with it, so code and role cannot disagree. */
function appEnvironment(cfg: StackConfig, groups: readonly string[], extra: Json = {}): Json {
  return {
    TABLE_NAME: cfg.tableName,
    SECRETS_PARAMETER_PREFIX: cfg.ssmPrefix,
    SECRETS_PARAMETER_PATHS: ssmPaths(cfg, groups).join(','),
    LEASE_SECONDS: String(cfg.leaseSeconds),
    ...extra,
  };
}

/** The systems whose records a read route shows: the Kontantanalys read its own, the status route every system's. */
function readsOf(fn: string): SystemName[] {
  return fn === 'kontantanalysGet' ? ['kontantanalys'] : SYSTEMS;
}

function specs(cfg: StackConfig): Record<string, FunctionSpec> {
  const out: Record<string, FunctionSpec> = {};
  for (const r of API_ROUTES) {
    const system: SystemName | undefined = 'posts' in r ? r.posts : undefined;
    const groups = system ? [COMMON_GROUP, SSM_GROUP[system]] : [COMMON_GROUP];
    const httpEvent = {
      http: {
        method: r.method.toLowerCase(),
        path: r.path,
        // API Gateway requires a key: the authorizer supplies the caller's (apiKeySourceType AUTHORIZER).
        private: true,
        authorizer: { name: AUTHORIZER, type: 'request', resultTtlInSeconds: 0 },
      },
    };
    // One function serving several routes (events out, issue 21): each route is one more event of it.
    const served = out[r.function];
    if (served) {
      (served.definition.events as Json[]).push(httpEvent);
      continue;
    }
    out[r.function] = {
      definition: {
        handler: `functions/${r.file}.handler`,
        environment: appEnvironment(cfg, groups, system ? { RETRY_QUEUE_URL: ref(queueId(system)), [RATE_VARIABLE[system]]: String(cfg.rates[system]) } : {}),
        // REQUEST type with caching off: a request is authorized whichever of x-api-key or webhook-* it carries
        // (with identity sources, API Gateway would refuse one kind before asking the authorizer).
        events: [httpEvent],
      },
      // The openapi route reads no record: it needs no table at all. The read routes read records of the systems they show.
      // The events routes keep endpoints, events and deliveries (shared/events/store.ts): what they write and
      // the events-index they query.
      access: system
        ? { ssmGroups: groups, table: ROUTE_TABLE, queryIndexes: true, leadingKeys: [LEADING_KEYS.records(system), LEADING_KEYS.limiter(system), LEADING_KEYS.webhooks], sendTo: [system], readAttributes: [system] }
        : r.function === 'eventEndpoints'
          ? { ssmGroups: groups, table: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:BatchGetItem'], queryIndexes: true, leadingKeys: [...LEADING_KEYS.events], deletes: ['endpoint#*'], webhookMemory: true }
          : { ssmGroups: groups, ...(r.function === 'openapi' ? {} : { table: ['dynamodb:GetItem'], leadingKeys: readsOf(r.function).map(LEADING_KEYS.records), webhookMemory: true }) },
    };
  }
  for (const system of SYSTEMS) {
    const groups = [COMMON_GROUP, SSM_GROUP[system]];
    const concurrency = workerConcurrency(cfg.rates[system]);
    out[workerName(system)] = {
      definition: {
        handler: `functions/retry-${system}.handler`,
        // Shorter than the lease (LEASE_SECONDS): Lambda stops a worker before its lease can expire under it (issue 12).
        timeout: cfg.workerTimeout,
        reservedConcurrency: concurrency,
        environment: appEnvironment(cfg, groups, { RETRY_QUEUE_URL: ref(queueId(system)), [RATE_VARIABLE[system]]: String(cfg.rates[system]) }),
        events: [
          {
            sqs: {
              arn: getAtt(queueId(system), 'Arn'),
              // One slot reservation and one fence write per batch (shared/core/worker.ts): larger batches
              // mean fewer of both per payment; 100 at 10/s is ten seconds of sends, inside the timeout.
              // The local queue gathers its batches the same way (shared/queue/local.ts).
              batchSize: WORKER_BATCH.size,
              maximumBatchingWindow: WORKER_BATCH.windowSeconds,
              functionResponseType: 'ReportBatchItemFailures',
              // Equal to the reserved concurrency, so the poller never invokes into a throttle.
              maximumConcurrency: concurrency,
            },
          },
        ],
      },
      access: { ssmGroups: groups, table: WORKER_TABLE, queryIndexes: true, leadingKeys: [LEADING_KEYS.records(system), LEADING_KEYS.limiter(system), LEADING_KEYS.fences], consume: system, sendTo: [system] },
    };
  }
  out.sweep = {
    definition: {
      handler: 'functions/sweep.handler',
      timeout: 60,
      environment: appEnvironment(cfg, [COMMON_GROUP], {
        // System -> queue URL, built by CloudFormation: the sweep re-enqueues each overdue record on its own system's queue.
        RETRY_QUEUE_URLS: sub(`{${SYSTEMS.map((s) => `"${s}":"\${${queueId(s)}}"`).join(',')}}`),
        // Every system's rate: the sweep tells a backlog (depth / rate) from a lost message.
        ...Object.fromEntries(SYSTEMS.map((s) => [RATE_VARIABLE[s], String(cfg.rates[s])])),
      }),
      events: [{ schedule: { rate: 'rate(1 minute)', enabled: true } }],
    },
    // Every system's records and limiter, and the fences (it looks whether a queued attempt began); no webhook id.
    access: {
      ssmGroups: [COMMON_GROUP],
      table: SCHEDULED_TABLE,
      queryIndexes: true,
      leadingKeys: [...SYSTEMS.map(LEADING_KEYS.records), ...SYSTEMS.map(LEADING_KEYS.limiter), LEADING_KEYS.fences],
      sendTo: SYSTEMS,
      readAttributes: SYSTEMS,
    },
  };
  out.kontantanalysSync = {
    definition: {
      handler: 'functions/kontantanalys-sync.handler',
      timeout: 900,
      environment: appEnvironment(cfg, [COMMON_GROUP, SSM_GROUP.kontantanalys], { RETRY_QUEUE_URL: ref(queueId('kontantanalys')), KONTANTANALYS_MAX_RPS: String(cfg.rates.kontantanalys) }),
      events: [{ schedule: { rate: cfg.kontantanalysSyncSchedule, enabled: true } }],
    },
    // Query on the indexes, never Scan: the daily pass reads the records it needs through status-index.
    access: { ssmGroups: [COMMON_GROUP, SSM_GROUP.kontantanalys], table: SCHEDULED_TABLE, queryIndexes: true, leadingKeys: [LEADING_KEYS.records('kontantanalys')], sendTo: ['kontantanalys'] },
  };
  // Events out (issue 21): fed by the bus through EventsQueue, and every minute for the retries that fall due.
  out.eventDelivery = {
    definition: {
      handler: 'functions/event-delivery.handler',
      timeout: EVENT_DELIVERY_TIMEOUT,
      reservedConcurrency: EVENT_DELIVERY_CONCURRENCY,
      environment: appEnvironment(cfg, [COMMON_GROUP]),
      events: [
        { sqs: { arn: getAtt(EVENTS_QUEUE, 'Arn'), batchSize: 10, maximumBatchingWindow: 1, maximumConcurrency: EVENT_DELIVERY_CONCURRENCY } },
        { schedule: { rate: 'rate(1 minute)', enabled: true } },
      ],
    },
    // What shared/events/store.ts sends: Get/Put/Update and BatchGet by key, Query on events-index.
    access: {
      ssmGroups: [COMMON_GROUP],
      // The events' own items (endpoints, events, deliveries), and the events-index partitions it queries.
      table: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:BatchGetItem'],
      queryIndexes: true,
      leadingKeys: [...LEADING_KEYS.events],
      // The record of each event, read (by its pending mark, or an old message's key) and its mark cleared
      // (an UpdateItem): never written whole, which only the engine's writes do.
      alsoItems: [{ table: ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:UpdateItem'], leadingKeys: SYSTEMS.map(LEADING_KEYS.records) }],
      consumeEvents: true,
    },
  };
  out[AUTHORIZER] = {
    definition: {
      handler: `functions/${AUTHORIZER}.handler`,
      memorySize: 256,
      timeout: 10,
      environment: {
        API_KEYS_PARAMETER: `${cfg.ssmPrefix}/${COMMON_GROUP}/API_KEYS`,
        CALLERS: cfg.callers.join(','),
        USAGE_KEY_PREFIX: usageKeyPrefix(cfg),
      },
    },
    // Exactly one parameter, and nothing of the table or the queues.
    access: { ssmGroups: [], ssmParameters: [`${COMMON_GROUP}/API_KEYS`] },
  };
  Object.assign(out, consoleSpecs(cfg));
  return out;
}

// ---- The operator console (issue 22): its function, its authorizer, their roles. Kept together here. ----

/** The console's function and its own authorizer (functions/console.ts, functions/console-authorize.ts). */
export const CONSOLE = 'console';
export const CONSOLE_AUTHORIZER = 'consoleAuthorize';
/** The console's SSM group: OPERATOR_KEYS, read by the console and its authorizer only (no payment function sees it). */
export const CONSOLE_GROUP = 'console';
/** The methods the console answers (shared/console/handler.ts): its page, files and API, GET and POST only. */
export const CONSOLE_ROUTES = [
  { method: 'get', path: 'console' },
  { method: 'get', path: 'console/{proxy+}' },
  { method: 'post', path: 'console/{proxy+}' },
] as const;

/**
 * The console's routes are not the callers' API: no API Gateway key is required (operators have none) and
 * the callers' authorizer is not on them (it admits x-api-key callers and would refuse every operator).
 * Their own REQUEST authorizer admits the page, its files and the sign-in, and otherwise a valid operator
 * session only; it refuses any request carrying a caller's credential (docs/aws.md, "The console").
 */
function consoleSpecs(cfg: StackConfig): Record<string, FunctionSpec> {
  const groups = [COMMON_GROUP, CONSOLE_GROUP];
  return {
    [CONSOLE]: {
      definition: {
        handler: `functions/${CONSOLE}.handler`,
        environment: appEnvironment(cfg, groups, {
          // An action queues the payment on its own system's queue, signed with RETRY_MESSAGE_KEY (common).
          RETRY_QUEUE_URLS: sub(`{${SYSTEMS.map((s) => `"${s}":"\${${queueId(s)}}"`).join(',')}}`),
          // The bulk preview shows each system's pace.
          ...Object.fromEntries(SYSTEMS.map((s) => [RATE_VARIABLE[s], String(cfg.rates[s])])),
        }),
        events: CONSOLE_ROUTES.map((r) => ({ http: { method: r.method, path: r.path, authorizer: { name: CONSOLE_AUTHORIZER, type: 'request', resultTtlInSeconds: 0 } } })),
      },
      // Records of every system (detail, actions), the listing index's partitions (pay#posted, pay#open, audit)
      // and the audit entries (audit#<ms>#<id>); each system's limiter item read only (GET /console/api/limits);
      // no fence or webhook item. Query, never Scan.
      access: {
        ssmGroups: groups,
        table: CONSOLE_TABLE,
        queryIndexes: true,
        leadingKeys: [...SYSTEMS.map(LEADING_KEYS.records), ...CONSOLE_LEADING_KEYS],
        readKeys: CONSOLE_READ_KEYS,
        alsoItems: [{ table: ['dynamodb:GetItem'], leadingKeys: SYSTEMS.map(LEADING_KEYS.limiter) }],
        sendTo: SYSTEMS,
      },
    },
    [CONSOLE_AUTHORIZER]: {
      definition: {
        handler: 'functions/console-authorize.handler',
        memorySize: 256,
        timeout: 10,
        environment: {
          OPERATOR_KEYS_PARAMETER: `${cfg.ssmPrefix}/${CONSOLE_GROUP}/OPERATOR_KEYS`,
          LOG_HASH_KEY_PARAMETER: `${cfg.ssmPrefix}/${COMMON_GROUP}/LOG_HASH_KEY`,
        },
      },
      // Exactly the two parameters a session check needs, and nothing of the table or the queues.
      access: { ssmGroups: [], ssmParameters: [`${CONSOLE_GROUP}/OPERATOR_KEYS`, `${COMMON_GROUP}/LOG_HASH_KEY`] },
    },
  };
}

/** The table actions the console calls (test/integration/template.test.ts records them). */
const CONSOLE_TABLE: TableAction[] = ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:BatchGetItem'];
/** The listing index's partitions and the audit entries (shared/store/indexes.ts LIST_PARTS, shared/store/browse.ts AuditLog). */
const CONSOLE_LEADING_KEYS = ['pay#*', 'audit', 'audit#*'];
/**
 * Read only (Access.readKeys): a payment's settlement events and their deliveries for the timeline, and the
 * index keys of a caller's endpoints (their ids; never an endpoint item, which holds its secrets).
 */
const CONSOLE_READ_KEYS = ['event#*', 'delivery#*', 'endpoints#*'];

// ---- End of the console's part. ----

/** serverless.yml `functions`: every function, each with its own role. */
export function slsFunctions(cfg: StackConfig): Record<string, Json> {
  return Object.fromEntries(Object.entries(specs(cfg)).map(([fn, s]) => [fn, { ...s.definition, role: roleId(fn) }]));
}

/** serverless.yml `resources` (merged with the hand-written ones): roles, queues, the DLQ alarm, queue outputs. */
export function slsResources(cfg: StackConfig): { Resources: Json; Outputs: Json } {
  const Resources: Json = {};
  for (const [fn, s] of Object.entries(specs(cfg))) {
    Resources[roleId(fn)] = role(cfg, fn, s.access);
  }
  for (const system of SYSTEMS) {
    Resources[dlqId(system)] = {
      Type: 'AWS::SQS::Queue',
      Properties: {
        QueueName: `${cfg.service}-${cfg.stage}-retry-${system}-dlq`,
        // The maximum: a dead letter keeps its original enqueue time, so it needs longer here than in its queue.
        MessageRetentionPeriod: 1_209_600,
        SqsManagedSseEnabled: true,
      },
    };
    Resources[queueId(system)] = {
      Type: 'AWS::SQS::Queue',
      Properties: {
        QueueName: `${cfg.service}-${cfg.stage}-retry-${system}`,
        // At least 6x the worker's timeout (AWS guidance for SQS event sources), so a batch in flight is never redelivered.
        VisibilityTimeout: 6 * cfg.workerTimeout,
        // Four days: longer than any retry lives (MAX_AGE_HOURS, 72 by default), shorter than the DLQ's fourteen.
        MessageRetentionPeriod: 345_600,
        SqsManagedSseEnabled: true,
        // A message that crashed its worker 5 times goes to this system's own DLQ; other systems are unaffected.
        RedrivePolicy: { deadLetterTargetArn: getAtt(dlqId(system), 'Arn'), maxReceiveCount: 5 },
      },
    };
  }
  // The events out DLQs (issue 21) are watched by the same alarm: a dead letter anywhere is one page.
  const watched: [string, string][] = [...SYSTEMS.map((system): [string, string] => [dlqId(system), `${system} DLQ`]), [EVENTS_PIPE_DLQ, 'events pipe DLQ'], [EVENTS_QUEUE_DLQ, 'events DLQ']];
  const ids = watched.map((_, i) => `dlq${i}`);
  Resources.DeadLetterQueueNotEmptyAlarm = {
    Type: 'AWS::CloudWatch::Alarm',
    Properties: {
      AlarmName: `${cfg.service}-${cfg.stage}-dlq-not-empty`,
      AlarmDescription: "A retry message failed 5 receives, or a payment event could not be put on the bus or handed to the endpoints; the alarm's metrics show which DLQ holds it. Retry DLQs: fix the cause, then run paybridge redrive --system <system>. Events: docs/events.md.",
      Metrics: [
        ...watched.map(([queue, label], i) => ({
          Id: ids[i],
          Label: label,
          ReturnData: false,
          MetricStat: {
            Metric: { Namespace: 'AWS/SQS', MetricName: 'ApproximateNumberOfMessagesVisible', Dimensions: [{ Name: 'QueueName', Value: getAtt(queue, 'QueueName') }] },
            Period: 60,
            Stat: 'Maximum',
          },
        })),
        // One alarm over every DLQ; FILL so a quiet queue that reports no data cannot hide a full one.
        { Id: 'deadLettered', Label: 'messages in the fullest DLQ', Expression: `MAX([${ids.map((id) => `FILL(${id}, 0)`).join(', ')}])`, ReturnData: true },
      ],
      EvaluationPeriods: 1,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
      AlarmActions: [ref('AlarmTopic')],
    },
  };
  Object.assign(Resources, eventsResources(cfg));
  const Outputs: Json = {};
  for (const system of SYSTEMS) {
    Outputs[`${queueId(system)}Url`] = { Value: ref(queueId(system)) };
    Outputs[`${dlqId(system)}Url`] = { Value: ref(dlqId(system)) };
  }
  return { Resources, Outputs };
}

/**
 * Events out in AWS (issue 21): the table's stream -> a pipe (new events only, a retry limit and a DLQ,
 * where the defaults would retry a bad record for 24 h and then drop it) -> the stage's bus (AWS-native
 * consumers add their own rules) -> a rule -> EventsQueue -> the delivery function. The pipe passes the
 * event's own fields only (InputTemplate): the record's request and its key, either of which may hold
 * personal data, never leave the table.
 */
function eventsResources(cfg: StackConfig): Json {
  const image = (path: string) => `<$.dynamodb.NewImage.${path}>`;
  // Other consumers subscribe to the bus: no record key (`pk`, `key`), as a NIF natural key holds the personId.
  // `key` is the name the payment's HTTP events give it (eventSubject, written with the event), and the
  // delivery function finds the record by its pending mark (eventsKey, at) instead (functions/event-delivery.ts).
  const template = {
    id: image('lastEvent.M.id.S'),
    type: image('lastEvent.M.type.S'),
    system: image('system.S'),
    key: image('eventSubject.S'),
    revision: image('lastEvent.M.revision.N'),
    status: image('lastEvent.M.status.S'),
    sequence: image('lastEvent.M.seq.N'),
    at: image('lastEvent.M.at.N'),
    eventsKey: image('eventsKey.S'),
  };
  const queue = (name: string, extra: Json = {}) => ({ Type: 'AWS::SQS::Queue', Properties: { QueueName: `${cfg.service}-${cfg.stage}-${name}`, SqsManagedSseEnabled: true, ...extra } });
  return {
    EventsBus: { Type: 'AWS::Events::EventBus', Properties: { Name: `${cfg.service}-${cfg.stage}-events` } },
    [EVENTS_PIPE_DLQ]: queue('events-pipe-dlq', { MessageRetentionPeriod: 1_209_600 }),
    [EVENTS_QUEUE_DLQ]: queue('events-dlq', { MessageRetentionPeriod: 1_209_600 }),
    [EVENTS_QUEUE]: queue('events', {
      VisibilityTimeout: 6 * EVENT_DELIVERY_TIMEOUT,
      MessageRetentionPeriod: 345_600,
      RedrivePolicy: { deadLetterTargetArn: getAtt(EVENTS_QUEUE_DLQ, 'Arn'), maxReceiveCount: 5 },
    }),
    EventsPipeRole: {
      Type: 'AWS::IAM::Role',
      Properties: {
        Description: `${cfg.service} ${cfg.stage}: the events pipe only`,
        AssumeRolePolicyDocument: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'pipes.amazonaws.com' }, Action: 'sts:AssumeRole' }] },
        Policies: [
          {
            PolicyName: 'eventsPipe',
            PolicyDocument: {
              Version: '2012-10-17',
              Statement: [
                { Effect: 'Allow', Action: ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator', 'dynamodb:ListStreams'], Resource: getAtt('RecordsTable', 'StreamArn') },
                { Effect: 'Allow', Action: ['events:PutEvents'], Resource: getAtt('EventsBus', 'Arn') },
                { Effect: 'Allow', Action: ['sqs:SendMessage'], Resource: getAtt(EVENTS_PIPE_DLQ, 'Arn') },
              ],
            },
          },
        ],
      },
    },
    EventsPipe: {
      Type: 'AWS::Pipes::Pipe',
      Properties: {
        Name: `${cfg.service}-${cfg.stage}-events`,
        RoleArn: getAtt('EventsPipeRole', 'Arn'),
        Source: getAtt('RecordsTable', 'StreamArn'),
        SourceParameters: {
          // Only the write that stamped an event carries eventNew (shared/events/model.ts).
          FilterCriteria: { Filters: [{ Pattern: JSON.stringify({ dynamodb: { NewImage: { eventNew: { S: [{ exists: true }] } } } }) }] },
          DynamoDBStreamParameters: {
            StartingPosition: 'TRIM_HORIZON',
            BatchSize: 10,
            MaximumRetryAttempts: 10,
            MaximumRecordAgeInSeconds: 21_600,
            OnPartialBatchItemFailure: 'AUTOMATIC_BISECT',
            DeadLetterConfig: { Arn: getAtt(EVENTS_PIPE_DLQ, 'Arn') },
          },
        },
        Target: getAtt('EventsBus', 'Arn'),
        TargetParameters: {
          // Every value is a string in the stream's image (numbers too): the delivery function reads them as such.
          InputTemplate: JSON.stringify(template),
          EventBridgeEventBusParameters: { Source: 'paybridge', DetailType: 'paybridge.payment-event' },
        },
      },
    },
    EventsRule: {
      Type: 'AWS::Events::Rule',
      Properties: {
        Description: 'Every payment event to the delivery function (HTTP endpoints); other rules may take them too',
        EventBusName: ref('EventsBus'),
        EventPattern: { source: ['paybridge'], 'detail-type': ['paybridge.payment-event'] },
        Targets: [{ Id: 'delivery', Arn: getAtt(EVENTS_QUEUE, 'Arn') }],
      },
    },
    EventsQueuePolicy: {
      Type: 'AWS::SQS::QueuePolicy',
      Properties: {
        Queues: [ref(EVENTS_QUEUE)],
        PolicyDocument: {
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Principal: { Service: 'events.amazonaws.com' }, Action: 'sqs:SendMessage', Resource: getAtt(EVENTS_QUEUE, 'Arn'), Condition: { ArnEquals: { 'aws:SourceArn': getAtt('EventsRule', 'Arn') } } }],
        },
      },
    },
    // The delivery function logs this line when it disables an endpoint (5 days failing, or 410).
    EventEndpointDisabledFilter: {
      Type: 'AWS::Logs::MetricFilter',
      Properties: {
        LogGroupName: ref(logGroupId('eventDelivery')),
        FilterPattern: '{ $.message = "event endpoint disabled" }',
        MetricTransformations: [{ MetricNamespace: 'paybridge', MetricName: `EventEndpointsDisabled-${cfg.stage}`, MetricValue: '1', DefaultValue: 0 }],
      },
    },
    EventEndpointDisabledAlarm: {
      Type: 'AWS::CloudWatch::Alarm',
      Properties: {
        AlarmName: `${cfg.service}-${cfg.stage}-event-endpoint-disabled`,
        AlarmDescription: "A caller's event endpoint was disabled (410, or failing for 5 days); the caller's other endpoints got endpoint.disabled.",
        Namespace: 'paybridge',
        MetricName: `EventEndpointsDisabled-${cfg.stage}`,
        Statistic: 'Sum',
        Period: 300,
        EvaluationPeriods: 1,
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        TreatMissingData: 'notBreaching',
        AlarmActions: [ref('AlarmTopic')],
      },
    },
  };
}

/** Every usage plan: one per x-api-key caller (with a quota), and the webhooks' (a throttle only). */
function plans(cfg: StackConfig): [string, Plan | Throttle][] {
  return [...cfg.callers.map((c): [string, Plan] => [c, { ...cfg.callerPlan, ...cfg.callerPlans[c] }]), [WEBHOOK_CALLER, cfg.webhookPlan]];
}

/** osls builds logical ids from a plan's name, and those allow no dash: `pos-web` becomes `PosWeb`. */
export const planName = (caller: string) => pascal(caller);

/** provider.apiGateway.usagePlan: a throttle and a quota per caller. */
export function slsUsagePlans(cfg: StackConfig): Json[] {
  return plans(cfg).map(([caller, p]) => ({ [planName(caller)]: { throttle: { rateLimit: p.rateLimit, burstLimit: p.burstLimit }, ...('quota' in p ? { quota: { limit: p.quota, period: p.period } } : {}) } }));
}

/** provider.apiGateway.apiKeys: each caller's API Gateway key, in its own plan. */
export function slsApiKeys(cfg: StackConfig): Json[] {
  return plans(cfg).map(([caller]) => ({
    [planName(caller)]: [{ name: `${cfg.service}-${cfg.stage}-${caller}`, value: usageKey(cfg, caller), description: `Usage plan key of caller ${caller}: returned by the authorizer, never sent by the caller` }],
  }));
}

/** Checks deploy-time settings before anything is generated, naming what is wrong. */
export function validateConfig(cfg: StackConfig): StackConfig {
  const problems: string[] = [];
  for (const system of SYSTEMS) {
    const rate = cfg.rates[system];
    if (!(typeof rate === 'number' && Number.isFinite(rate) && rate > 0)) problems.push(`custom.rates.${system} must be a positive number (got ${String(rate)})`);
  }
  for (const extra of Object.keys(cfg.rates)) if (!(SYSTEMS as string[]).includes(extra)) problems.push(`custom.rates.${extra} is not a system (${SYSTEMS.join(', ')})`);
  if (new Set(cfg.callers).size !== cfg.callers.length) problems.push('custom.api.callers lists a caller twice');
  for (const c of cfg.callers) {
    if (!CALLER_NAME.test(c)) problems.push(`caller "${c}" must be lower-case letters and digits in words joined by single dashes (at most 40 characters)`);
    if (c === WEBHOOK_CALLER) problems.push(`caller "${WEBHOOK_CALLER}" is reserved for webhook-signed requests`);
  }
  for (const c of Object.keys(cfg.callerPlans)) if (!cfg.callers.includes(c)) problems.push(`custom.api.callerPlans.${c} names no caller in custom.api.callers`);
  if (!(cfg.workerTimeout < cfg.leaseSeconds)) problems.push(`the worker timeout (${cfg.workerTimeout} s) must be shorter than LEASE_SECONDS (${cfg.leaseSeconds} s)`);
  for (const [name, p] of plans(cfg)) {
    // API Gateway takes key values of 20 to 128 characters.
    const value = usageKey(cfg, name);
    if (value.length < 20 || value.length > 128) problems.push(`usage key ${value} of ${name} must be 20 to 128 characters long`);
    if (!(p.rateLimit > 0 && p.burstLimit >= 1)) problems.push(`usage plan ${name}: rateLimit and burstLimit must be positive`);
    if ('quota' in p && !(p.quota >= 1)) problems.push(`usage plan ${name}: quota must be positive`);
    if ('quota' in p && !['DAY', 'WEEK', 'MONTH'].includes(p.period)) problems.push(`usage plan ${name}: period must be DAY, WEEK or MONTH`);
  }
  if (problems.length > 0) throw new Error(`invalid deploy settings in serverless.yml: ${problems.join('; ')}`);
  return cfg;
}

type Resource = { Type: string; Properties?: Json; DependsOn?: string | string[] };

/**
 * After osls has compiled the API: the stage becomes the hand-written `ApiGatewayStage` resource
 * (throttling, access log) bound to this package's deployment. osls otherwise lets the deployment
 * create the stage implicitly, leaving its settings to SDK calls after deploy, outside the template
 * (and a deployment's StageDescription cannot be changed once the stage exists).
 */
export function bindStage(template: { Resources: Record<string, Resource> }, stageId = 'ApiGatewayStage'): void {
  const resources = template.Resources;
  const deployments = Object.keys(resources).filter((id) => resources[id]?.Type === 'AWS::ApiGateway::Deployment');
  const stage = resources[stageId];
  if (deployments.length !== 1 || !stage) throw new Error(`bindStage: expected one API Gateway deployment and the ${stageId} resource, found ${deployments.length} and ${stage ? 'it' : 'none'}`);
  const deploymentId = deployments[0] as string;
  const deployment = resources[deploymentId] as Resource;
  delete deployment.Properties?.StageName;
  stage.Properties = { ...stage.Properties, DeploymentId: ref(deploymentId) };
  // Keys and usage plans name the stage: they wait for the stage now, not for the deployment.
  for (const r of Object.values(resources)) {
    if ((r.Type === 'AWS::ApiGateway::UsagePlan' || r.Type === 'AWS::ApiGateway::ApiKey') && r.DependsOn === deploymentId) r.DependsOn = stageId;
  }
  // Gateway responses are published by a deployment: it must come after them.
  const responses = Object.keys(resources).filter((id) => resources[id]?.Type === 'AWS::ApiGateway::GatewayResponse');
  deployment.DependsOn = [...[deployment.DependsOn ?? []].flat(), ...responses];
}
