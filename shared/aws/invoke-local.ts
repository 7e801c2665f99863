import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { encodeRetryMessage, parseMessageKeys, retryMessageFields, UnauthenticatedMessageError, parseRetryMessage } from '../queue/port.js';
import { queueId, SYSTEMS } from './stack.js';

/**
 * `serverless invoke local -f <function> --path events/<file>` against the running local stack
 * (issue 15). As deployed, a function's environment names SSM (SECRETS_PARAMETER_PREFIX), the stage's
 * table and queue URLs that are CloudFormation references: osls resolves those through CloudFormation and
 * the handler reads SSM and DynamoDB, each of which wanted AWS credentials. Invoked locally, the function
 * gets the local stack's environment instead (its dynalite and table, its API keys, webhook secret and
 * sandboxes, its queues as an SQS endpoint), fetched from the stack itself, so no secret is written to
 * disk. Nothing here runs for any other command.
 */

type Json = Record<string, unknown>;

/** What `npm start` writes (shared/cli/context.ts, LocalFile): where the running stack answers. */
interface LocalFile {
  apiUrl: string;
  apiKey: string;
  /** The owner-only file of the operator key npm start made (OPERATOR_KEYS unset). */
  operatorKeyFile?: string;
}

/** The local hooks answer operators only (issue 20 item 3): PAYBRIDGE_OPERATOR_KEY, else the key npm start keeps. */
function operatorKey(stack: LocalFile, env: Record<string, string | undefined> = process.env): string {
  const given = env.PAYBRIDGE_OPERATOR_KEY?.trim();
  if (given) return given;
  try {
    if (stack.operatorKeyFile) return readFileSync(stack.operatorKeyFile, 'utf8').trim();
  } catch {
    // Reported below.
  }
  throw new InvokeLocalError('serverless invoke local needs an operator key of the local stack: run it as the user that ran npm start, or set PAYBRIDGE_OPERATOR_KEY to one of its OPERATOR_KEYS');
}

/** The part of the local stack's answer (shared/local/invoke-env.ts) this needs. */
interface LocalEnvironment {
  env: Record<string, string>;
  queues: Record<string, string>;
}

/** Why invoke local cannot run, as osls shows a ServerlessError: the message alone. */
export class InvokeLocalError extends Error {
  override readonly name = 'InvokeLocalError';
}

export function readLocalStack(serviceDir: string, env: Record<string, string | undefined> = process.env): LocalFile {
  const path = resolve(serviceDir, env.PAYBRIDGE_LOCAL_FILE ?? '.data/local.json');
  if (!existsSync(path)) {
    throw new InvokeLocalError(`serverless invoke local runs the function against the local stack, and none is running (${path} is missing): start it with npm start, then invoke again`);
  }
  return JSON.parse(readFileSync(path, 'utf8')) as LocalFile;
}

export async function fetchLocalEnvironment(stack: LocalFile): Promise<LocalEnvironment> {
  let res: Response;
  try {
    res = await fetch(`${stack.apiUrl}/__local/invoke-env`, { method: 'POST', headers: { authorization: `Bearer ${operatorKey(stack)}`, 'content-type': 'application/json' }, body: '{}', signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    throw new InvokeLocalError(`the local stack at ${stack.apiUrl} did not answer (${(err as Error).message}): is npm start still running?`);
  }
  if (!res.ok) throw new InvokeLocalError(`the local stack at ${stack.apiUrl} answered ${res.status} when asked for its environment`);
  return (await res.json()) as LocalEnvironment;
}

/** A function's deployed environment with everything that pointed at AWS pointed at the local stack. */
export function localEnvironment(deployed: Json, local: LocalEnvironment): Json {
  if (deployed.API_KEYS_PARAMETER !== undefined) {
    throw new InvokeLocalError(
      'the authorizer is not run by invoke local: it reads API_KEYS from SSM and answers API Gateway alone. The local gateway makes the same decision on every request (shared/http/authorizer.ts), and test/unit/functions/authorize.test.ts runs the handler with SSM mocked',
    );
  }
  const { SECRETS_PARAMETER_PREFIX: _p, SECRETS_PARAMETER_PATHS: _s, RETRY_QUEUE_URL: own, RETRY_QUEUE_URLS: all, ...rest } = deployed;
  const out: Json = { ...rest, ...local.env };
  if (own !== undefined) {
    // `{ Ref: RetryQueue<System> }`: the function's own system's queue.
    const ref = (own as { Ref?: unknown }).Ref;
    const system = SYSTEMS.find((s) => queueId(s) === ref);
    if (!system || !local.queues[system]) throw new InvokeLocalError(`RETRY_QUEUE_URL refers to ${JSON.stringify(own)}, which is no system's retry queue`);
    out.RETRY_QUEUE_URL = local.queues[system];
  }
  if (all !== undefined) out.RETRY_QUEUE_URLS = JSON.stringify(local.queues);
  return out;
}

/**
 * The handler's bundle is ESM (`.mjs`, serverless.yml's custom.esbuild), and osls's invoke local loads a
 * handler with require(), trying the path as given and then with `.cjs`. A `.cjs` beside the bundle that
 * requires it lets that work (Node 20.19+ requires ES modules without top-level await).
 */
export function writeHandlerShim(serviceDir: string, handler: string): void {
  const path = handler.slice(0, handler.lastIndexOf('.'));
  const bundle = join(serviceDir, `${path}.mjs`);
  if (!existsSync(bundle)) return;
  const base = path.slice(path.lastIndexOf('/') + 1);
  writeFileSync(join(serviceDir, `${path}.cjs`), `// Written by shared/aws/invoke-local.ts for serverless invoke local: osls loads handlers with require().\nmodule.exports = require('./${base}.mjs');\n`);
}

/**
 * An SQS event file (`events/retry-message.json`) holds plain messages: a retry worker reads only
 * messages signed with RETRY_MESSAGE_KEY (issue 20 item 4). Invoked locally, by an operator of the local
 * stack, it is signed with that stack's key as the stack's queue would have signed it. Bodies already
 * signed, and anything that is not a retry message, are left as they are.
 */
export function signQueueEvent(event: unknown, keyText: string | undefined): unknown {
  const records = (event as { Records?: unknown } | null)?.Records;
  if (!keyText || !Array.isArray(records)) return event;
  const keys = parseMessageKeys(keyText);
  const signed = records.map((r: unknown) => {
    const body = (r as { body?: unknown } | null)?.body;
    if (typeof body !== 'string') return r;
    try {
      parseRetryMessage(body, keys);
      return r;
    } catch (err) {
      if (!(err instanceof UnauthenticatedMessageError)) return r;
    }
    try {
      return { ...(r as Json), body: encodeRetryMessage(retryMessageFields(JSON.parse(body)), keys) };
    } catch {
      return r;
    }
  });
  return { ...(event as Json), Records: signed };
}

/** The osls object, as far as this touches it. */
export interface InvokeServerless {
  serviceDir: string;
  processedInput?: { commands?: string[] };
  service: {
    custom?: { esbuild?: Json };
    getFunction(name: string): { handler?: string; environment?: Json };
  };
  classes: { Error: new (message: string) => Error };
}

export const isInvokeLocal = (serverless: InvokeServerless) => (serverless.processedInput?.commands ?? []).join(' ') === 'invoke local';

/**
 * The hooks the plugin adds for `invoke local`: at `initialize` (before osls reads the function's
 * environment, which it does in its own before:invoke:local:loadEnvVars) the environment is replaced;
 * after serverless-esbuild has built the bundle (before:invoke:local:invoke, plugins in the order
 * serverless.yml lists them), the shim is written.
 */
export function invokeLocalHooks(serverless: InvokeServerless, options: { function?: string; data?: unknown }): Record<string, () => Promise<void> | void> {
  // Its own work folder: `serverless package` (CI, the template test) builds in .esbuild and removes it.
  const esbuild = serverless.service.custom?.esbuild;
  if (esbuild) esbuild.outputWorkFolder = '.esbuild-local';
  let messageKey: string | undefined;
  const fail = (err: unknown): never => {
    if (err instanceof InvokeLocalError) throw new serverless.classes.Error(err.message);
    throw err;
  };
  return {
    initialize: async () => {
      try {
        const name = options.function;
        if (!name) return;
        const fn = serverless.service.getFunction(name);
        const local = await fetchLocalEnvironment(readLocalStack(serverless.serviceDir));
        fn.environment = localEnvironment(fn.environment ?? {}, local);
        messageKey = local.env.RETRY_MESSAGE_KEY;
        // osls looks AWS credentials up for the invocation's environment before the function's own are
        // applied; with these set it finds them at once instead of walking the whole chain (EC2 metadata
        // included). The function gets the same dummy values: it talks to nothing but the local stack.
        process.env.AWS_ACCESS_KEY_ID = local.env.AWS_ACCESS_KEY_ID;
        process.env.AWS_SECRET_ACCESS_KEY = local.env.AWS_SECRET_ACCESS_KEY;
        delete process.env.AWS_SESSION_TOKEN;
        delete process.env.AWS_PROFILE;
        // The SDK's own switch for its Node 20 notice (README, "Node versions"), as npm test sets it.
        process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
      } catch (err) {
        fail(err);
      }
    },
    'before:invoke:local:invoke': () => {
      const handler = options.function ? serverless.service.getFunction(options.function).handler : undefined;
      if (handler) writeHandlerShim(serverless.serviceDir, handler);
      // osls has read the event file into the options it shares with its plugins by now.
      options.data = signQueueEvent(options.data, messageKey);
    },
  };
}
