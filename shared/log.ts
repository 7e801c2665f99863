import { createHmac, randomBytes } from 'node:crypto';
import { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { MiddlewareObj } from '@middy/core';
import type { Context } from 'aws-lambda';

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

let processKey: string | undefined;

/**
 * The key of hashId: LOG_HASH_KEY (required in every deployed stage, config.ts; kept in .data/ by
 * `npm start`). Without one, a random key for this process: a constant default would let anyone who
 * knows it reverse a logged personId hash by trying every id, which takes well under a second.
 */
export function logHashKey(): string {
  const configured = process.env.LOG_HASH_KEY;
  if (configured) return configured;
  processKey ??= randomBytes(32).toString('hex');
  return processKey;
}

/**
 * A keyed hash for identifiers that are personal data (contactId, personId, the record key that
 * embeds them): logs can be correlated with a record without holding the identifier. Keyed, so a
 * short numeric id cannot be recovered by hashing every candidate without the key.
 */
export function hashId(value: string, key = logHashKey()): string {
  return createHmac('sha256', key).update(value).digest('hex').slice(0, 16);
}

type Level = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR' | 'SILENT';
const LEVELS: readonly string[] = ['DEBUG', 'INFO', 'WARN', 'ERROR', 'SILENT'] satisfies Level[];

/**
 * The level asked for (the argument, else POWERTOOLS_LOG_LEVEL, else LOG_LEVEL), in Powertools' spelling.
 * Powertools reads those variables itself but only in upper case, and `LOG_LEVEL=silent` is how the tests
 * and `npm start` ask for quiet. Anything else is left to Powertools' default (INFO). Lambda's own log
 * level (AWS_LAMBDA_LOG_LEVEL, advanced logging controls) still wins over this, as Powertools documents.
 */
function levelOf(level: string | undefined): Level | undefined {
  const asked = (level ?? process.env.POWERTOOLS_LOG_LEVEL ?? process.env.LOG_LEVEL)?.trim().toUpperCase();
  return asked && LEVELS.includes(asked) ? (asked as Level) : undefined;
}

/**
 * Errors are logged by name, message and stack only. Powertools would add every enumerable field of an
 * error, and an AWS SDK error can carry the item a condition failed on (the old record, personal ids in
 * it): the "no personal data in logs" rule (README, Observability) needs them left out.
 */
function errorReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message, stack: value.stack };
  return value;
}

function powertools(service: string, level: string | undefined): PowertoolsLogger {
  const logLevel = levelOf(level);
  return new PowertoolsLogger({ serviceName: service, ...(logLevel ? { logLevel } : {}), jsonReplacerFn: errorReplacer });
}

/** The process's logger, which logInvocation() gives each invocation's Lambda context and correlation id. */
let root: PowertoolsLogger | undefined;
const rootLogger = () => {
  root ??= powertools('paybridge', undefined);
  return root;
};

function wrap(pt: PowertoolsLogger, bound: LogFields): Logger {
  // Bound fields travel with each line rather than as a Powertools child: a child per record (the sweep
  // makes hundreds) would be a whole logger each, and would not see the invocation's context added later.
  const line = (fields?: LogFields) => (fields ? { ...bound, ...fields } : bound);
  return {
    debug: (m, f) => pt.debug(m, line(f)),
    info: (m, f) => pt.info(m, line(f)),
    warn: (m, f) => pt.warn(m, line(f)),
    error: (m, f) => pt.error(m, line(f)),
    child: (fields) => wrap(pt, { ...bound, ...fields }),
  };
}

/**
 * JSON lines through Powertools Logger (level, message, timestamp, service, sampling, the Lambda context
 * and correlation id): `service` in `base` names the service, the other fields go on every line. Without
 * `level`, the process's logger (LOG_LEVEL from the environment), which logInvocation() enriches; with
 * one, a logger of that level of its own (tests pass 'silent').
 */
export function createLogger(base: LogFields = {}, level?: string): Logger {
  const { service, ...fields } = base;
  const pt = level === undefined && (service === undefined || service === 'paybridge') ? rootLogger() : powertools(typeof service === 'string' ? service : 'paybridge', level);
  return wrap(pt, fields);
}

/** What ties one HTTP request's lines together: the caller's x-correlation-id, else API Gateway's request id. */
function correlationOf(event: unknown): string | undefined {
  const e = event as { headers?: Record<string, string | undefined> | null; requestContext?: { requestId?: string } } | undefined;
  const requestId = e?.requestContext?.requestId;
  if (!requestId) return undefined;
  const header = Object.entries(e?.headers ?? {}).find(([name]) => name.toLowerCase() === 'x-correlation-id')?.[1];
  // The same rule the payment routes use for a payment's correlationId (shared/http/payments.ts).
  return header?.slice(0, 100) || requestId;
}

/**
 * A middy middleware for the deployed handlers: each invocation's lines carry its Lambda context
 * (function_request_id, cold_start) and, for an HTTP request, its correlation_id; sampling
 * (POWERTOOLS_LOGGER_SAMPLE_RATE) is decided afresh; the keys are reset afterwards. The event itself is
 * never logged, whatever POWERTOOLS_LOGGER_LOG_EVENT says: request bodies hold personal data.
 */
export function logInvocation(): MiddlewareObj<unknown, unknown, Error, Context> {
  const pt = rootLogger();
  const inject = injectLambdaContext(pt, { resetKeys: true, logEvent: false });
  return {
    before: (request) => {
      inject.before?.(request as never);
      const id = correlationOf(request.event);
      if (id) pt.setCorrelationId(id);
    },
    after: inject.after as MiddlewareObj<unknown, unknown, Error, Context>['after'],
    onError: inject.onError as MiddlewareObj<unknown, unknown, Error, Context>['onError'],
  };
}
