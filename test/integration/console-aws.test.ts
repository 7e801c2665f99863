import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import dynalite from 'dynalite';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE, CONSOLE_AUTHORIZER, slsFunctions, SYSTEMS } from '../../shared/aws/stack.js';
import { stackConfig } from '../helpers/stack-config.js';
import { makeDynamoClient } from '../../shared/store/client.js';
import { ensureTable } from '../../shared/store/table.js';
import { customEsbuild, esbuildOptions } from '../bench/coldstart.js';
import { fakeSqs, fakeSsm } from '../helpers/aws-calls.js';

/**
 * Issue 22 in AWS: the console's function and its authorizer as serverless-esbuild bundles them (serverless.yml's
 * settings and plugins), each run in a Node process of its own as Lambda runs it, with the environment
 * shared/aws/stack.ts gives it and API Gateway-shaped events. Parameter Store, SQS and DynamoDB are loopback
 * stand-ins. Nothing of the repository is beside the bundles: the page and its files must come from inside.
 */

const CALLER_KEY = 'pb_console_aws_caller_key';
const OPERATOR_KEY = 'console-aws-operator-key-0123456789';
const STAGE = 'test';

const cfg = stackConfig(STAGE);

/** What the child process runs: the bundled handlers, called as API Gateway calls them, each answer printed as JSON. */
const SCENARIO = `
const [consoleUrl, gateUrl, stage, callerKey, operatorKey] = process.argv.slice(1);
const { handler } = await import(consoleUrl);
const { handler: gate } = await import(gateUrl);
const event = (method, path, headers = {}, body) => ({
  resource: path === '/console' ? '/console' : '/console/{proxy+}', path, httpMethod: method,
  headers: { host: 'abc123.execute-api.eu-north-1.amazonaws.com', ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
  multiValueHeaders: {}, queryStringParameters: null, multiValueQueryStringParameters: null,
  pathParameters: path === '/console' ? null : { proxy: path.slice('/console/'.length) }, stageVariables: null,
  body: body === undefined ? null : JSON.stringify(body), isBase64Encoded: false,
  requestContext: { requestId: 'r-' + Math.random(), path: '/' + stage + path, httpMethod: method, stage },
});
const gateEvent = (method, path, headers) => ({ ...event(method, path, headers), type: 'REQUEST', methodArn: 'arn:aws:execute-api:eu-north-1:000000000000:abc123/' + stage + '/' + method + path });
// What Lambda passes beside the event (the logger reads the function's name and request id from it).
const context = { functionName: 'paybridge-' + stage + '-console', functionVersion: '$LATEST', invokedFunctionArn: 'arn:aws:lambda:eu-north-1:000000000000:function:paybridge-' + stage + '-console', memoryLimitInMB: '512', awsRequestId: 'req-1', getRemainingTimeInMillis: () => 29000 };
const call = (e) => handler(e, context);
const verdict = async (e) => { try { const r = await gate(e); return r.policyDocument.Statement[0].Effect; } catch (err) { return err.message; } };
const out = {};
const page = await call(event('GET', '/console'));
out.page = { status: page.statusCode, csp: page.headers['content-security-policy'], linksUnderStage: page.body.includes('src="/' + stage + '/console/assets/app.js"') };
out.files = {};
for (const name of ['app.js', 'app.css', 'uplot.js', 'uplot.css', 'favicon.svg']) out.files[name] = (await call(event('GET', '/console/assets/' + name))).statusCode;
const caller = await call(event('POST', '/console/api/login', {}, { key: callerKey }));
out.callerSignIn = { status: caller.statusCode, type: caller.headers['content-type'], cookie: caller.headers['set-cookie'] ?? null };
const operator = await call(event('POST', '/console/api/login', {}, { key: operatorKey }));
const cookie = String(operator.headers['set-cookie']);
out.operatorSignIn = { status: operator.statusCode, cookie: cookie.replace(/^pb_console=[^;]+/, 'pb_console=<value>') };
const session = cookie.split(';')[0];
const action = await call(event('POST', '/console/api/payments/cambio/any-key/actions/redrive', { cookie: session }, { reason: 'no token' }));
out.actionWithoutCsrf = { status: action.statusCode, title: JSON.parse(action.body).title };
out.listing = (await call(event('GET', '/console/api/payments', { cookie: session }))).statusCode;
out.gate = {
  page: await verdict(gateEvent('GET', '/console', {})),
  signIn: await verdict(gateEvent('POST', '/console/api/login', {})),
  apiWithoutSession: await verdict(gateEvent('GET', '/console/api/payments', {})),
  apiWithSession: await verdict(gateEvent('GET', '/console/api/payments', { cookie: session })),
  callerKey: await verdict(gateEvent('POST', '/console/api/login', { 'x-api-key': callerKey })),
  callerKeyWithSession: await verdict(gateEvent('GET', '/console/api/payments', { cookie: session, 'x-api-key': callerKey })),
};
process.stdout.write(JSON.stringify(out));
`;

describe('the console as deployed: its bundled function and authorizer, invoked with API Gateway events', () => {
  let dir: string;
  const cleanups: (() => Promise<void> | void)[] = [];
  let env: Record<string, string>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'paybridge-console-aws-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    // serverless.yml's esbuild settings and plugins, as `serverless package` bundles them.
    await build({ ...esbuildOptions(customEsbuild(), join(dir, 'service')), entryPoints: ['functions/console.ts', 'functions/console-authorize.ts'], outdir: join(dir, 'functions'), logLevel: 'silent' });
    const db = dynalite({ createTableMs: 0 });
    await new Promise<void>((resolve) => db.listen(0, '127.0.0.1', () => resolve()));
    cleanups.push(() => new Promise<void>((resolve) => db.close(() => resolve())));
    const dynamoEndpoint = `http://127.0.0.1:${(db.address() as AddressInfo).port}`;
    const client = makeDynamoClient({ endpoint: dynamoEndpoint });
    await ensureTable(client, cfg.tableName);
    client.destroy();
    const p = `/paybridge/${STAGE}`;
    const ssm = await fakeSsm({
      [`${p}/common/API_KEYS`]: `pos=${CALLER_KEY}`,
      [`${p}/common/LOG_HASH_KEY`]: 'console-aws-log-hash-key-0123456789',
      [`${p}/common/RETRY_MESSAGE_KEY`]: 'console-aws-retry-message-key-0123456789',
      [`${p}/console/OPERATOR_KEYS`]: `olga=${OPERATOR_KEY}`,
    });
    const sqs = await fakeSqs();
    cleanups.push(() => ssm.close(), () => sqs.close());
    const functions = slsFunctions(cfg);
    const own = (fn: string) => (functions[fn] as { environment: Record<string, unknown> }).environment;
    // The console's queue map is a Fn::Sub of the queues' Refs: here, the stand-in's URLs by name.
    const queues = JSON.stringify(Object.fromEntries(SYSTEMS.map((s) => [s, sqs.urlOf(`paybridge-${STAGE}-retry-${s}`)])));
    const strings = (vars: Record<string, unknown>) => Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, typeof v === 'string' ? v : k === 'RETRY_QUEUE_URLS' ? queues : '']));
    env = {
      PATH: process.env.PATH ?? '',
      AWS_REGION: 'eu-north-1', AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test',
      AWS_ENDPOINT_URL_SSM: ssm.url, AWS_ENDPOINT_URL_SQS: sqs.url, DYNAMODB_ENDPOINT: dynamoEndpoint, LOG_LEVEL: 'silent',
      ...strings(own(CONSOLE)), ...strings(own(CONSOLE_AUTHORIZER)),
    };
  }, 60_000);
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('bundles each as its handler alone, the console at most 1 MiB with its page and files inside', () => {
    expect(statSync(join(dir, 'functions', 'console.mjs')).size).toBeLessThanOrEqual(1024 * 1024);
    expect(statSync(join(dir, 'functions', 'console-authorize.mjs')).size).toBeLessThanOrEqual(1024 * 1024);
  });

  it('refuses a caller key at sign-in, signs an operator in with a Secure, HttpOnly, SameSite=Strict cookie, refuses an action without CSRF', async () => {
    const url = (name: string) => pathToFileURL(join(dir, 'functions', name)).href;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', SCENARIO, url('console.mjs'), url('console-authorize.mjs'), STAGE, CALLER_KEY, OPERATOR_KEY], { env, cwd: dir, timeout: 30_000 });
    const out = JSON.parse(stdout) as Record<string, any>;
    expect(out.page).toEqual({ status: 200, csp: expect.stringMatching(/^default-src 'none'; script-src 'self';/), linksUnderStage: true });
    expect(out.files).toEqual({ 'app.js': 200, 'app.css': 200, 'uplot.js': 200, 'uplot.css': 200, 'favicon.svg': 200 });
    expect(out.callerSignIn).toEqual({ status: 401, type: 'application/problem+json', cookie: null });
    expect(out.operatorSignIn.status).toBe(200);
    expect(out.operatorSignIn.cookie).toBe(`pb_console=<value>; Path=/${STAGE}/console; HttpOnly; SameSite=Strict; Max-Age=28800; Secure`);
    expect(out.actionWithoutCsrf).toEqual({ status: 403, title: 'Missing or wrong CSRF token' });
    expect(out.listing).toBe(200);
    // The console's own authorizer: open page and sign-in, the API with a session only, a caller's key never.
    expect(out.gate).toEqual({ page: 'Allow', signIn: 'Allow', apiWithoutSession: 'Unauthorized', apiWithSession: 'Allow', callerKey: 'Unauthorized', callerKeyWithSession: 'Unauthorized' });
  }, 40_000);
});
