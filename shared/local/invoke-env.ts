import { commonSchema, SYSTEM_NAMES, systemSchema, type Config } from '../config.js';
import { localQueueUrl, SQS_PATH } from './sqs-endpoint.js';

/**
 * The environment a function needs to run against this local stack under `serverless invoke local`
 * (issue 15): what the stack itself runs with (API keys, webhook secret, the sandboxes and their
 * credentials, the log-hash key), its dynalite and table, and its queues as an SQS endpoint. The osls
 * plugin (shared/aws/invoke-local.ts) puts this in place of the deployed environment, which points at
 * SSM, the stage's table and CloudFormation-made queue URLs: each of those asked for AWS credentials.
 */
export interface InvokeLocalEnvironment {
  env: Record<string, string>;
  /** Each system's queue URL on the local SQS endpoint. */
  queues: Record<string, string>;
}

/** Only the application's own variables (config.ts), never the rest of the shell that started npm start. */
const KNOWN = new Set([...Object.keys(commonSchema().shape), ...SYSTEM_NAMES.flatMap((s) => Object.keys(systemSchema(s).shape)), 'LOG_HASH_KEY', 'LOG_LEVEL']);
/** Local to this process, or AWS-only: a handler invoked elsewhere must not get them. */
const NOT_PASSED = new Set(['PORT', 'SECRETS_PARAMETER_PREFIX', 'SECRETS_PARAMETER_PATHS', 'RETRY_QUEUE_URL', 'RETRY_QUEUE_URLS']);

export function invokeLocalEnvironment(config: Config, apiUrl: string, dynamoEndpoint: string): InvokeLocalEnvironment {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(config.env)) if (KNOWN.has(k) && !NOT_PASSED.has(k)) env[k] = v;
  Object.assign(env, {
    TABLE_NAME: config.TABLE_NAME,
    DYNAMODB_ENDPOINT: dynamoEndpoint,
    AWS_ENDPOINT_URL_SQS: `${apiUrl}${SQS_PATH}`,
    // The SQS client signs its requests, so it needs some credentials; nothing here talks to AWS.
    AWS_ACCESS_KEY_ID: 'paybridge-local',
    AWS_SECRET_ACCESS_KEY: 'paybridge-local',
  });
  return { env, queues: Object.fromEntries(SYSTEM_NAMES.map((s) => [s, localQueueUrl(apiUrl, s)])) };
}
