import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { GetItemCommand, ScanCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import { Webhook } from 'standardwebhooks';
import { vi } from 'vitest';
import { DEV_WEBHOOK_SECRET } from '../../shared/local/stack.js';
import { lambdaContext } from '../../shared/local/server.js';
import { makeDynamoClient } from '../../shared/store/client.js';
import { ensureTable } from '../../shared/store/table.js';
import { BrpSandbox } from '../../shared/systems/brp/simulator.js';
import { CambioSandbox } from '../../shared/systems/cambio/simulator.js';
import { KontantanalysSandbox } from '../../shared/systems/kontantanalys/simulator.js';
import { NifSandbox } from '../../shared/systems/nif/simulator.js';
import type { FaultPlan } from '../../shared/systems/sandbox.js';
import { encodeRetryMessage, type MessageKeys, type RetryMessage } from '../../shared/queue/port.js';

/** The stage's RETRY_MESSAGE_KEY in this drive (the stand-in Parameter Store holds it). */
const MESSAGE_KEYS: MessageKeys = { sign: 'iam-test-retry-message-key-0123456789abcdef', verify: ['iam-test-retry-message-key-0123456789abcdef'] };
import { AwsCallRecorder, fakeSqs, fakeSsm } from './aws-calls.js';
import { pipeInput } from './events-pipe.js';

type Json = Record<string, any>;

const ROOT = join(import.meta.dirname, '..', '..');
const API_KEY = 'pb_iam_test_key';
/** An operator of the console (OPERATOR_KEYS in the stand-in Parameter Store's console group). */
const OPERATOR_KEY = 'iam-test-operator-key-0123456789';
const YEAR = new Date().getFullYear();

/** What starts a function in the template: its routes, the queue it consumes, a schedule, or being the authorizer. */
export interface PackagedFunction {
  /** The function's name in serverless.yml (`paybridge-<stage>-` taken off its FunctionName). */
  name: string;
  logicalId: string;
  /** `functions/<file>.ts`. */
  file: string;
  environment: Record<string, unknown>;
  routes: { method: string; path: string }[];
  /** The name of the queue its SQS event source mapping consumes. */
  consumes?: string;
  scheduled: boolean;
  authorizer: boolean;
}

const targetOf = (v: any): string | undefined => v?.Ref ?? v?.['Fn::GetAtt']?.[0];

/** Every function of a packaged template and what invokes it, read from the template alone. */
export function packagedFunctions(template: Json): PackagedFunction[] {
  const resources = template.Resources as Record<string, Json>;
  const pathOf = (id: string): string => {
    const r = resources[id]?.Properties;
    const parent = r?.ParentId?.Ref;
    return `${parent ? pathOf(parent) : ''}/${r?.PathPart}`;
  };
  const referencedIn = (value: unknown): string[] => [...(JSON.stringify(value) ?? '').matchAll(/"Fn::GetAtt":\["([A-Za-z0-9]+)"/g)].map((m) => m[1] as string);
  const stage = resources.ApiGatewayStage?.Properties?.StageName as string;
  return Object.entries(resources)
    .filter(([, r]) => r.Type === 'AWS::Lambda::Function')
    .map(([id, r]) => {
      const mapping = Object.values(resources).find((m) => m.Type === 'AWS::Lambda::EventSourceMapping' && targetOf(m.Properties.FunctionName) === id);
      return {
        name: String(r.Properties.FunctionName).replace(`paybridge-${stage}-`, ''),
        logicalId: id,
        file: `${String(r.Properties.Handler).replace(/\.handler$/, '')}.ts`,
        environment: r.Properties.Environment?.Variables ?? {},
        routes: Object.values(resources)
          .filter((m) => m.Type === 'AWS::ApiGateway::Method' && referencedIn(m.Properties.Integration?.Uri).includes(id))
          .map((m) => ({ method: m.Properties.HttpMethod as string, path: pathOf(m.Properties.ResourceId.Ref) })),
        ...(mapping ? { consumes: resources[targetOf(mapping.Properties.EventSourceArn) as string]?.Properties.QueueName as string } : {}),
        scheduled: Object.values(resources).some((e) => e.Type === 'AWS::Events::Rule' && (e.Properties.Targets ?? []).some((t: Json) => targetOf(t.Arn) === id)),
        authorizer: Object.values(resources).some((a) => a.Type === 'AWS::ApiGateway::Authorizer' && referencedIn(a.Properties.AuthorizerUri).includes(id)),
      };
    });
}

/** A body each payment route accepts (the seed documents' examples), and the headers it needs, for a new key. */
const EXAMPLES: Record<string, (key: string) => { body: unknown; headers?: Record<string, string>; pathParameters?: Record<string, string> }> = {
  'POST /v1/cambio/payment-notices': (key) => ({ body: { status: 'PAID', contactId: key, paymentType: 'CARD' } }),
  'POST /v1/nif/membership/payments': (key) => ({ body: nifExample(key, '2015'), headers: { ClubId: '4568' } }),
  'POST /v1/nif/corporate/payments': (key) => ({ body: nifExample(key, '2015'), headers: { ClubId: '4568' } }),
  'POST /v1/nif/payments': (key) => ({ body: nifExample(key, String(YEAR)) }),
  'POST /v1/brp/sales': (key) => ({
    body: { externalId: key, businessUnitId: 3, customer: { personId: 4711 }, rows: [{ productId: 10, quantity: 2 }], bookings: [{ productId: 20, startDate: '2026-12-01', startTime: '18:00', resourceId: resourceOf(key) }], payment: { amount: 60000, paymentMethodId: 1 } },
  }),
  'PUT /v1/kontantanalys/{resource}/{externalId}': (key) => ({
    body: { principalOrganisationId: 3, serviceTypeId: 3, serviceFormId: 4, openHoursPerWeek: 40, closedWeeksPerYear: 4 },
    pathParameters: { resource: 'templates', externalId: key },
  }),
};
/** A BRP booking resource per key: the sandbox refuses a second booking of one resource at one time. */
const resourceOf = (key: string) => 100 + [...key].reduce((h, c) => (h * 31 + c.charCodeAt(0)) % 100_000, 0);
const nifExample = (externalId: string, year: string) => ({
  amount: '450', comment: 'paid for club membership', externalId, isFamilyMember: 'true', isPaid: 'false', orgId: '7896', paidDate: `${year}-05-08`,
  paidToOrgId: '4568', paymentCategory: 'Club membership', paymentTypeId: 0, periodFrom: `${year}-05-08`, periodTo: `${year}-06-08`, personId: '8675682',
});

/** The read routes, each asked for something that exists and something that does not. */
const READS: Record<string, (known: Map<string, string>) => Record<string, string>[]> = {
  'GET /v1/payments/{system}/{key}': (known) => [...[...known].map(([system, key]) => ({ system, key })), { system: 'cambio', key: 'never-sent' }],
  'GET /v1/kontantanalys/{resource}/{externalId}': (known) => [{ resource: 'templates', externalId: known.get('kontantanalys')?.replace(/^templates\//, '') ?? 'none' }, { resource: 'templates', externalId: 'never-sent' }],
  'GET /v1/openapi.json': () => [{}],
};

export interface DriveResult {
  recorder: AwsCallRecorder;
  /** Functions the drive could not invoke (no scenario knows how): the check fails on each. */
  undriven: string[];
  /** Payments refused (4xx) and answers of 500 and up, by function: a broken scenario, not a finding. */
  serverErrors: string[];
}

/**
 * Runs every function of the packaged template through its own handler (functions/<file>.ts, built by
 * its own awsDeps wiring, in a module graph of its own as in a Lambda container), with its packaged
 * environment, against loopback stand-ins: dynalite for the table, a recording SQS and Parameter Store,
 * the sandboxes for the downstreams. The paths driven are the ones whose calls differ: a first delivery,
 * a duplicate, a signed webhook and its replay, a send that fails and is queued, a payment queued behind
 * a backlog; each worker's messages with and without the record's copy; the sweep over a lost message;
 * the Kontantanalys run over its records; the read routes; the authorizer. Every AWS call each function
 * makes is recorded for it (shared/aws/observe.ts).
 */
export async function driveFunctions(template: Json): Promise<DriveResult> {
  const recorder = new AwsCallRecorder().install();
  const cleanups: (() => Promise<void> | void)[] = [() => recorder.uninstall()];
  const functions = packagedFunctions(template);
  const stage = template.Resources.ApiGatewayStage.Properties.StageName as string;
  const prefix = `/paybridge/${stage}`;
  const saved = { ...process.env };
  cleanups.push(() => {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  });
  try {
    const db = dynalite({ createTableMs: 0 });
    await new Promise<void>((resolve) => db.listen(0, '127.0.0.1', () => resolve()));
    cleanups.push(() => new Promise<void>((resolve) => db.close(() => resolve())));
    const dynamoEndpoint = `http://127.0.0.1:${(db.address() as AddressInfo).port}`;
    const tableName = String(functions.find((f) => f.environment.TABLE_NAME)?.environment.TABLE_NAME);
    const setup = makeDynamoClient({ endpoint: dynamoEndpoint });
    await ensureTable(setup, tableName);
    setup.destroy();

    const cambio = await new CambioSandbox({ ratePerSecond: 1000 }).start();
    const nif = await new NifSandbox({ ratePerSecond: 1000 }).start();
    const brp = await new BrpSandbox({ ratePerSecond: 1000 }).start();
    const kontantanalys = await new KontantanalysSandbox({ ratePerSecond: 1000 }).start();
    cleanups.push(() => cambio.close(), () => nif.close(), () => brp.close(), () => kontantanalys.close());
    const faults: Record<string, FaultPlan> = { cambio: cambio.faults, 'nif-membership': nif.faults, 'nif-corporate': nif.faults, nif: nif.faults, brp: brp.faults, kontantanalys: kontantanalys.faults };
    const p = (group: string, values: Record<string, string>) => Object.fromEntries(Object.entries(values).map(([k, v]) => [`${prefix}/${group}/${k}`, v]));
    const ssm = await fakeSsm({
      ...p('common', { API_KEYS: `iam-test=${API_KEY}`, WEBHOOK_SECRET: DEV_WEBHOOK_SECRET, LOG_HASH_KEY: 'iam-test-log-hash-key-0123456789', RETRY_MESSAGE_KEY: MESSAGE_KEYS.sign }),
      ...p('cambio', { CAMBIO_BASE_URL: cambio.url, CAMBIO_TOKEN_URL: cambio.tokenUrl, CAMBIO_CLIENT_ID: cambio.options.clientId, CAMBIO_CLIENT_SECRET: cambio.options.clientSecret, CAMBIO_SUBSCRIPTION_KEY: cambio.options.subscriptionKey }),
      ...p('nif', {
        NIF_MEMBERSHIP_BASE_URL: nif.url, NIF_SUBSCRIPTION_KEY: nif.options.subscriptionKey, NIF_CLUB_TOKENS: JSON.stringify(nif.options.clubTokens),
        NIF_BASE_URL: nif.url, NIF_TOKEN_URL: nif.tokenUrl, NIF_CLIENT_ID: nif.options.clientId, NIF_CLIENT_SECRET: nif.options.clientSecret,
      }),
      ...p('brp', { BRP_BASE_URL: brp.url, BRP_API_KEY: brp.options.apiKey, BRP_USERNAME: brp.options.username, BRP_PASSWORD: brp.options.password }),
      ...p('kontantanalys', { KONTANTANALYS_BASE_URL: kontantanalys.url, KONTANTANALYS_USERNAME: kontantanalys.options.username, KONTANTANALYS_PASSWORD: kontantanalys.options.password }),
      ...p('console', { OPERATOR_KEYS: `iam-op=${OPERATOR_KEY}` }),
    });
    const sqs = await fakeSqs();
    cleanups.push(() => ssm.close(), () => sqs.close());
    // What every function shares in this process; each function's own environment comes from the template.
    Object.assign(process.env, {
      AWS_REGION: 'eu-north-1',
      AWS_ACCESS_KEY_ID: 'iam-test',
      AWS_SECRET_ACCESS_KEY: 'iam-test',
      AWS_ENDPOINT_URL_SSM: ssm.url,
      AWS_ENDPOINT_URL_SQS: sqs.url,
      DYNAMODB_ENDPOINT: dynamoEndpoint,
    });
    const base = { ...process.env };

    const resources = template.Resources as Record<string, Json>;
    const queueName = (id: string) => String(resources[id]?.Properties?.QueueName);
    const resolve = (value: unknown): string => {
      if (typeof value === 'string') return value;
      const v = value as Json;
      if (typeof v?.Ref === 'string') return sqs.urlOf(queueName(v.Ref));
      if (typeof v?.['Fn::Sub'] === 'string') return (v['Fn::Sub'] as string).replace(/\$\{([A-Za-z0-9]+)\}/g, (_, id: string) => sqs.urlOf(queueName(id)));
      throw new Error(`cannot resolve ${JSON.stringify(value)} outside CloudFormation`);
    };

    const handlers = new Map<string, (event: unknown, context: unknown) => Promise<any>>();
    /** Each function's process.env as its last invocation left it (awsDeps writes LOG_HASH_KEY there, as in its container). */
    const environments = new Map<string, Record<string, string | undefined>>();
    /** One invocation of a function, with its packaged environment (plus `extra`) in process.env meanwhile. */
    async function invoke(fn: PackagedFunction, event: unknown, extra: Record<string, string> = {}): Promise<any> {
      const own = environments.get(fn.name) ?? { ...base, ...Object.fromEntries(Object.entries(fn.environment).map(([k, v]) => [k, resolve(v)])) };
      for (const k of Object.keys(process.env)) if (!(k in own)) delete process.env[k];
      Object.assign(process.env, own, extra);
      let handler = handlers.get(fn.name);
      if (!handler) {
        // A module graph of its own, as each Lambda has its own process: nothing cached by another function (SSM values) is shared.
        vi.resetModules();
        handler = ((await import(join(ROOT, fn.file))) as { handler: (event: unknown, context: unknown) => Promise<any> }).handler;
        handlers.set(fn.name, handler);
      }
      try {
        return await recorder.as(fn.name, () => handler(event, lambdaContext(fn.name, randomUUID(), fn.consumes || fn.scheduled ? 60_000 : 29_000)));
      } finally {
        environments.set(fn.name, { ...process.env });
      }
    }

    const serverErrors: string[] = [];
    const driven = new Set<string>();
    const httpEvent = (route: { method: string; path: string }, pathParameters: Record<string, string>, body: unknown, headers: Record<string, string>) => {
      const path = route.path.replace(/\{(\w+)\}/g, (_, n: string) => encodeURIComponent(pathParameters[n] ?? ''));
      return {
        resource: route.path,
        path,
        httpMethod: route.method,
        headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
        multiValueHeaders: {},
        queryStringParameters: null,
        multiValueQueryStringParameters: null,
        pathParameters: Object.keys(pathParameters).length ? pathParameters : null,
        stageVariables: null,
        body: body === undefined ? null : typeof body === 'string' ? body : JSON.stringify(body),
        isBase64Encoded: false,
        requestContext: { requestId: randomUUID(), path, httpMethod: route.method, stage },
      };
    };
    const request = async (fn: PackagedFunction, route: { method: string; path: string }, pathParameters: Record<string, string>, body: unknown, headers: Record<string, string>) => {
      const reply = await invoke(fn, httpEvent(route, pathParameters, body, headers));
      // A payment the route refuses takes none of the paths this drive is for: the example is wrong, not the role.
      const refused = route.method === 'GET' ? reply?.statusCode >= 500 : !(reply?.statusCode < 400);
      if (refused) serverErrors.push(`${fn.name} ${route.method} ${route.path}: ${reply?.statusCode} ${String(reply?.body).slice(0, 300)}`);
      return reply;
    };
    const queueOf = (fn: PackagedFunction) => String(resolve(fn.environment.RETRY_QUEUE_URL ?? '')).replace(/^.*\//, '');
    const systemOf = (fn: PackagedFunction) => String(resolve(fn.environment.RETRY_QUEUE_URL ?? '')).match(/-retry-([a-z-]+)$/)?.[1];
    const signed = (body: unknown) => {
      const text = JSON.stringify(body);
      const id = `msg_${randomUUID()}`;
      const at = new Date();
      return { text, headers: { 'webhook-id': id, 'webhook-timestamp': String(Math.floor(at.getTime() / 1000)), 'webhook-signature': new Webhook(DEV_WEBHOOK_SECRET).sign(id, at, text) } };
    };

    // The callers' authorizer: a known key, and a made-up one (refused: it throws Unauthorized). The console's
    // own authorizer (it reads OPERATOR_KEYS) is driven with the console, below.
    const isConsoleGate = (f: PackagedFunction) => f.environment.OPERATOR_KEYS_PARAMETER !== undefined;
    for (const fn of functions.filter((f) => f.authorizer && !isConsoleGate(f))) {
      for (const key of [API_KEY, 'made-up']) {
        const route = functions.flatMap((f) => f.routes).find((r) => !r.path.startsWith('/console')) ?? { method: 'GET', path: '/' };
        await invoke(fn, { type: 'REQUEST', methodArn: `arn:aws:execute-api:eu-north-1:000000000000:x/${stage}/${route.method}${route.path}`, resource: route.path, path: route.path, httpMethod: route.method, headers: { 'x-api-key': key }, requestContext: { requestId: randomUUID() } }).catch(() => undefined);
      }
      driven.add(fn.name);
    }

    // Payment routes: a first delivery, its duplicate, a signed webhook and its replay, one that fails and is queued, one behind the backlog.
    const known = new Map<string, string>();
    // Short keys (NIF allows 25 characters): the function's place in the template and a number.
    const keyOf = (fn: PackagedFunction) => `iam${functions.indexOf(fn)}`;
    for (const fn of functions) {
      for (const route of fn.routes) {
        const example = EXAMPLES[`${route.method} ${route.path}`];
        if (!example) continue;
        const system = systemOf(fn) as string;
        const first = example(`${keyOf(fn)}-1`);
        await request(fn, route, first.pathParameters ?? {}, first.body, { 'x-api-key': API_KEY, ...first.headers });
        await request(fn, route, first.pathParameters ?? {}, first.body, { 'x-api-key': API_KEY, ...first.headers });
        known.set(system, first.pathParameters ? `${first.pathParameters.resource}/${first.pathParameters.externalId}` : first.headers?.ClubId ? `${first.headers.ClubId}:${keyOf(fn)}-1` : `${keyOf(fn)}-1`);
        const hook = example(`${keyOf(fn)}-2`);
        const delivery = signed(hook.body);
        for (let i = 0; i < 2; i++) await request(fn, route, hook.pathParameters ?? {}, delivery.text, { ...delivery.headers, ...hook.headers });
        // A send that fails, then the first send after it, which ends the outage this container saw (it wakes
        // the payments waiting in backoff). Both need the route to send at once: it queues a payment behind a
        // backlog or without a send slot in time (a cold start, a busy machine), so what is queued meanwhile
        // is set aside and each takes a few tries (a Query the drive still misses is exempt: test/template/grants.ts).
        const queue = queueOf(fn);
        const aside: string[] = [];
        for (const goal of ['fails', 'posts'] as const) {
          for (let i = 0; i < 4; i++) {
            aside.push(...sqs.take(queue));
            if (goal === 'fails') faults[system]?.push('503', '503', '503');
            const payment = example(`${keyOf(fn)}-${goal === 'fails' ? 3 : 8}${i}`);
            const reply = await request(fn, route, payment.pathParameters ?? {}, payment.body, { 'x-api-key': API_KEY, ...payment.headers });
            faults[system]?.clear();
            const view = JSON.parse(String(reply?.body ?? '{}')) as { status?: string; attempts?: number };
            if (goal === 'fails' ? view.status === 'retrying' && Number(view.attempts) >= 1 : reply?.statusCode === 201) break;
            await new Promise((r) => setTimeout(r, 1_000));
          }
        }
        sqs.put(queue, [...aside, ...sqs.take(queue)]);
        // A message is waiting on the queue now: this one queues behind it.
        const behind = example(`${keyOf(fn)}-4`);
        await request(fn, route, behind.pathParameters ?? {}, behind.body, { 'x-api-key': API_KEY, ...behind.headers });
        driven.add(fn.name);
      }
    }
    for (const fn of functions) {
      for (const route of fn.routes) {
        const reads = READS[`${route.method} ${route.path}`];
        if (!reads) continue;
        for (const params of reads(known)) {
          await request(fn, route, params, undefined, { 'x-api-key': API_KEY });
          // A signed read (a terminal asking after its payment) is remembered as a delivery (issue 20 item 8).
          const id = `msg_${randomUUID()}`;
          const at = new Date();
          await request(fn, route, params, undefined, { 'webhook-id': id, 'webhook-timestamp': String(Math.floor(at.getTime() / 1000)), 'webhook-signature': new Webhook(DEV_WEBHOOK_SECRET).sign(id, at, '') });
        }
        driven.add(fn.name);
      }
    }

    const workers = functions.filter((f) => f.consumes);
    /**
     * Hands each worker what waits on its queue, in one batch, as its SQS event source would: as queued
     * (the record's copy and fence) while its downstream fails, so the worker queues retries and sees the
     * outage; or as probes, naming the record only (the worker reads it), which end the outage.
     */
    /** The records each worker was last handed: probes name them when its queue is empty by then (a payment that posted meanwhile). */
    const seen = new Map<string, { pk: string; system: string }[]>();
    const deliver = async (opts: { failing?: boolean; probes?: boolean } = {}) => {
      for (const fn of workers) {
        const taken = sqs.take(fn.consumes as string);
        const named = taken.map((body) => JSON.parse(body) as Json);
        if (named.length > 0) seen.set(fn.name, named.map((m) => ({ pk: m.pk, system: m.system })));
        const messages = opts.probes ? (named.length > 0 ? named : (seen.get(fn.name) ?? [])).map((m) => ({ pk: m.pk, system: m.system, reason: 'probe', now: true })) : named;
        if (messages.length === 0) continue;
        const Records = messages.map((message, i) => {
          // Signed as the queues sign (RETRY_MESSAGE_KEY, issue 20 item 4): a probe names the record only, so the worker reads it (BatchGetItem).
          const body = opts.probes ? encodeRetryMessage(message as RetryMessage, MESSAGE_KEYS) : (taken[i] as string);
          return { messageId: randomUUID(), receiptHandle: randomUUID(), body, attributes: { ApproximateReceiveCount: '1' }, messageAttributes: {}, eventSource: 'aws:sqs', awsRegion: 'eu-north-1' };
        });
        const plan = faults[systemOf(fn) as string];
        if (opts.failing) plan?.push(...Array<'503'>(Records.length * 4).fill('503'));
        try {
          await invoke(fn, { Records });
        } finally {
          plan?.clear();
        }
        driven.add(fn.name);
      }
    };
    await deliver({ failing: true });
    await deliver({ probes: true });

    // Lost messages: every system gets one more queued payment whose message never arrives; the sweep finds it.
    for (const fn of functions) {
      for (const route of fn.routes) {
        const example = EXAMPLES[`${route.method} ${route.path}`];
        if (!example) continue;
        const system = systemOf(fn) as string;
        faults[system]?.push('503', '503', '503');
        const failed = example(`${keyOf(fn)}-5`);
        await request(fn, route, failed.pathParameters ?? {}, failed.body, { 'x-api-key': API_KEY, ...failed.headers });
        faults[system]?.clear();
        // Queued behind that one's message, so due at once.
        const lost = example(`${keyOf(fn)}-6`);
        await request(fn, route, lost.pathParameters ?? {}, lost.body, { 'x-api-key': API_KEY, ...lost.headers });
      }
    }
    for (const fn of workers) sqs.drop(fn.consumes as string);
    // One lost payment as an earlier version of paybridge wrote it, without a fence: the sweep gives it one (a write).
    // Found with the test's own Scan: the application never scans (test/integration/no-scan.test.ts).
    const client = makeDynamoClient({ endpoint: dynamoEndpoint });
    const retrying = await client.send(new ScanCommand({ TableName: tableName, FilterExpression: '#s = :r', ExpressionAttributeNames: { '#s': 'status' }, ExpressionAttributeValues: { ':r': { S: 'retrying' } } }));
    const legacy = retrying.Items?.[0]?.pk;
    // Overdue, with nobody attempting it (no lease), whichever retrying record the Scan found first: the sweep must write it.
    if (legacy) {
      await client.send(
        new UpdateItemCommand({ TableName: tableName, Key: { pk: legacy }, UpdateExpression: 'REMOVE fence, leaseOwner, leaseUntil, sending SET nextAttemptAt = :past', ExpressionAttributeValues: { ':past': { N: String(Date.now() - 60_000) } } }),
      );
    }
    else serverErrors.push('no retrying record was left for the sweep to find');
    client.destroy();
    for (const fn of functions.filter((f) => f.scheduled && f.environment.RETRY_QUEUE_URLS)) {
      // The sweep, without its grace (30 s deployed), so the payment queued behind the backlog is overdue at once.
      await invoke(fn, { 'detail-type': 'Scheduled Event', source: 'aws.events', detail: {} }, { SWEEP_GRACE_SECONDS: '0' });
      driven.add(fn.name);
    }
    await deliver();
    // Something still pending in every system when the Kontantanalys run looks (it wakes what is pending).
    for (const fn of functions) {
      for (const route of fn.routes) {
        const example = EXAMPLES[`${route.method} ${route.path}`];
        if (!example) continue;
        faults[systemOf(fn) as string]?.push(...Array<'503'>(6).fill('503'));
        const pending = example(`${keyOf(fn)}-7`);
        await request(fn, route, pending.pathParameters ?? {}, pending.body, { 'x-api-key': API_KEY, ...pending.headers });
      }
    }
    for (const f of Object.values(faults)) f.clear();
    for (const fn of functions.filter((f) => f.scheduled && !f.environment.RETRY_QUEUE_URLS)) {
      await invoke(fn, { 'detail-type': 'Scheduled Event', source: 'aws.events', detail: {} });
      driven.add(fn.name);
    }
    await deliver();

    // Events out (issue 21): every route of a caller's endpoints, then the delivery function with the bus's
    // message for a payment's event and its one-minute run.
    const endpointsFn = functions.find((f) => f.routes.some((r) => r.path === '/v1/event-endpoints'));
    if (endpointsFn) {
      const route = (method: string, path: string) => endpointsFn.routes.find((r) => r.method === method && r.path === path) ?? { method, path };
      const keyed = { 'x-api-key': API_KEY };
      // A public address (TEST-NET-2): registration checks it and connects to nothing.
      const made = await request(endpointsFn, route('POST', '/v1/event-endpoints'), {}, { url: 'https://198.51.100.7/paybridge-events' }, keyed);
      const id = String(JSON.parse(String(made?.body ?? '{}')).id);
      const other = await request(endpointsFn, route('POST', '/v1/event-endpoints'), {}, { url: 'https://198.51.100.8/gone', eventTypes: ['payment.posted'] }, keyed);
      await request(endpointsFn, route('GET', '/v1/event-endpoints'), {}, undefined, keyed);
      await request(endpointsFn, route('GET', '/v1/event-endpoints/{id}'), { id }, undefined, keyed);
      await request(endpointsFn, route('PATCH', '/v1/event-endpoints/{id}'), { id }, { description: 'iam drive' }, keyed);
      await request(endpointsFn, route('POST', '/v1/event-endpoints/{id}/rotate-secret'), { id }, undefined, keyed);
      await request(endpointsFn, route('POST', '/v1/event-endpoints/{id}/test'), { id }, undefined, keyed);
      await request(endpointsFn, route('GET', '/v1/event-endpoints/{id}/deliveries'), { id }, undefined, keyed);
      await request(endpointsFn, route('POST', '/v1/event-endpoints/{id}/recover'), { id }, { since: new Date(Date.now() - 3_600_000).toISOString() }, keyed);
      await request(endpointsFn, route('GET', '/v1/events'), {}, undefined, keyed);
      const signedId = `msg_${randomUUID()}`;
      const signedAt = new Date();
      await request(endpointsFn, route('GET', '/v1/events'), {}, undefined, { 'webhook-id': signedId, 'webhook-timestamp': String(Math.floor(signedAt.getTime() / 1000)), 'webhook-signature': new Webhook(DEV_WEBHOOK_SECRET).sign(signedId, signedAt, '') });
      await request(endpointsFn, route('DELETE', '/v1/event-endpoints/{id}'), { id: String(JSON.parse(String(other?.body ?? '{}')).id) }, undefined, keyed);
      driven.add(endpointsFn.name);
      // Deliveries go nowhere: the endpoint now names a loopback host, which the deployed policy refuses at
      // connect time (the attempt is recorded as failed, nothing leaves the machine). The test's own write.
      const own = makeDynamoClient({ endpoint: dynamoEndpoint });
      await own.send(new UpdateItemCommand({ TableName: tableName, Key: { pk: { S: `endpoint#${id}` } }, UpdateExpression: 'SET #u = :u', ExpressionAttributeNames: { '#u': 'url' }, ExpressionAttributeValues: { ':u': { S: 'https://localhost:1/refused' } } }));
      const stamped = await own.send(new ScanCommand({ TableName: tableName, FilterExpression: 'attribute_exists(lastEvent) AND attribute_exists(eventsKey)' }));
      own.destroy();
      const deliveryFn = functions.find((f) => f.consumes && f.environment.RETRY_QUEUE_URL === undefined && !f.routes.length && f.scheduled && f.name.toLowerCase().includes('event'));
      const item = stamped.Items?.[0];
      if (deliveryFn && item) {
        // As the packaged pipe's InputTemplate puts it on the bus, from the record's image (every value a string).
        const pipe = Object.values(template.Resources as Record<string, Json>).find((r) => r.Type === 'AWS::Pipes::Pipe');
        const detail = pipeInput(String(pipe?.Properties?.TargetParameters?.InputTemplate), { dynamodb: { NewImage: item } });
        await invoke(deliveryFn, { Records: [{ messageId: randomUUID(), receiptHandle: randomUUID(), body: JSON.stringify({ detail }), attributes: { ApproximateReceiveCount: '1' }, messageAttributes: {}, eventSource: 'aws:sqs', awsRegion: 'eu-north-1' }] });
        // The message found its record and handed the event on (its pending mark cleared): the calls recorded are that path's.
        const after = makeDynamoClient({ endpoint: dynamoEndpoint });
        const handed = await after.send(new GetItemCommand({ TableName: tableName, Key: { pk: { S: String(item.pk?.S) } }, ConsistentRead: true }));
        after.destroy();
        if (handed.Item?.eventsKey) serverErrors.push('events out: the delivery function did not hand on the event its bus message named');
        await invoke(deliveryFn, { 'detail-type': 'Scheduled Event', source: 'aws.events', detail: {} });
        driven.add(deliveryFn.name);
      } else serverErrors.push(`events out: ${deliveryFn ? 'no record with a pending event to hand on' : 'no delivery function in the template'}`);
    }

    // The operator console (issue 22): a payment held by its downstream's refusal of our credentials, then the
    // console signs in, reads every view and redrives it; its authorizer checks a session and refuses a caller.
    const consoleFn = functions.find((f) => f.routes.some((r) => r.path.startsWith('/console')));
    const cambioRoute = functions.flatMap((f) => f.routes.map((route) => ({ f, route }))).find(({ route }) => route.path === '/v1/cambio/payment-notices');
    let held: string | undefined;
    const notHeld: string[] = [];
    // As above: the route queues a payment behind a backlog, so what waits on Cambio's queue is set aside
    // for these tries (a try queued on a busy machine would otherwise make every later one queue behind it).
    const cambioQueue = cambioRoute ? queueOf(cambioRoute.f) : undefined;
    const heldAside: string[] = [];
    for (let i = 0; cambioRoute && i < 4 && !held; i++) {
      if (cambioQueue) heldAside.push(...sqs.take(cambioQueue));
      cambio.faults.push(...Array<'401'>(6).fill('401'));
      const payment = EXAMPLES['POST /v1/cambio/payment-notices']?.(`iamheld${i}`);
      const reply = await invoke(cambioRoute.f, httpEvent(cambioRoute.route, {}, payment?.body, { 'x-api-key': API_KEY }));
      cambio.faults.clear();
      if ((JSON.parse(String(reply?.body ?? '{}')) as { status?: string }).status === 'held') held = `iamheld${i}`;
      else {
        notHeld.push(`${reply?.statusCode} ${String(reply?.body ?? '').slice(0, 300)}`);
        await new Promise((r) => setTimeout(r, 1_000));
      }
    }
    if (cambioQueue) sqs.put(cambioQueue, [...heldAside, ...sqs.take(cambioQueue)]);
    if (!held) serverErrors.push(`no cambio payment was held for the console to redrive: ${notHeld.join(' | ')}`);
    const consoleEvent = (method: string, path: string, headers: Record<string, string>, body?: unknown) => ({
      resource: path === '/console' ? '/console' : '/console/{proxy+}',
      path,
      httpMethod: method,
      headers: { host: 'iam-test.execute-api.eu-north-1.amazonaws.com', ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      multiValueHeaders: {},
      queryStringParameters: path.includes('?') ? Object.fromEntries(new URLSearchParams(path.slice(path.indexOf('?') + 1))) : null,
      multiValueQueryStringParameters: null,
      pathParameters: path === '/console' ? null : { proxy: path.slice('/console/'.length).replace(/\?.*$/, '') },
      stageVariables: null,
      body: body === undefined ? null : JSON.stringify(body),
      isBase64Encoded: false,
      requestContext: { requestId: randomUUID(), path: `/${stage}${path.replace(/\?.*$/, '')}`, httpMethod: method, stage },
    });
    let cookie = '';
    if (consoleFn) {
      const call = async (method: string, path: string, expected: number, body?: unknown, headers: Record<string, string> = {}) => {
        const event = { ...consoleEvent(method, path, { ...(cookie ? { cookie } : {}), ...headers }, body), path: path.replace(/\?.*$/, '') };
        const reply = await invoke(consoleFn, event);
        if (reply?.statusCode !== expected) serverErrors.push(`${consoleFn.name} ${method} ${path}: ${reply?.statusCode} (expected ${expected}) ${String(reply?.body).slice(0, 300)}`);
        return reply;
      };
      await call('GET', '/console', 200);
      const login = await call('POST', '/console/api/login', 200, { key: OPERATOR_KEY });
      cookie = String(login?.headers?.['set-cookie'] ?? '').split(';')[0] ?? '';
      const csrf = (JSON.parse(String(login?.body ?? '{}')) as { csrf?: string }).csrf ?? '';
      for (const view of ['session', 'overview', 'limits', 'payments', 'payments?status=held&system=cambio', 'audit', ...(held ? [`payments/cambio/${held}`] : [])]) await call('GET', `/console/api/${view}`, 200);
      await call('POST', '/console/api/bulk/preview', 200, { action: 'redrive', filter: { system: 'cambio' } }, { 'x-csrf-token': csrf });
      if (held) await call('POST', `/console/api/payments/cambio/${held}/actions/redrive`, 200, { reason: 'the IAM drive' }, { 'x-csrf-token': csrf });
      driven.add(consoleFn.name);
    }
    for (const fn of functions.filter((f) => f.authorizer && isConsoleGate(f))) {
      const gateEvent = (method: string, path: string, headers: Record<string, string>) => ({
        ...consoleEvent(method, path, headers),
        type: 'REQUEST',
        methodArn: `arn:aws:execute-api:eu-north-1:000000000000:x/${stage}/${method}${path}`,
      });
      const allowed = await invoke(fn, gateEvent('GET', '/console/api/payments', { cookie })).catch((err: Error) => err);
      if (allowed instanceof Error || allowed?.policyDocument?.Statement?.[0]?.Effect !== 'Allow') serverErrors.push(`${fn.name}: refused the console's own session (${String(allowed instanceof Error ? allowed.message : JSON.stringify(allowed))})`);
      const refused = await invoke(fn, gateEvent('GET', '/console/api/payments', { 'x-api-key': API_KEY })).catch((err: Error) => err);
      if (!(refused instanceof Error)) serverErrors.push(`${fn.name}: let a caller's API key through`);
      driven.add(fn.name);
    }
    return { recorder, undriven: functions.map((f) => f.name).filter((n) => !driven.has(n)), serverErrors };
  } finally {
    for (const c of cleanups.reverse()) await c();
  }
}
