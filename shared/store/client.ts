import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { observed } from '../aws/observe.js';

export function makeDynamoClient(opts: { endpoint?: string | undefined; region?: string | undefined } = {}): DynamoDBClient {
  const config: DynamoDBClientConfig = { region: opts.region ?? 'eu-north-1' };
  if (opts.endpoint) {
    // Local only (dynalite): it accepts any credentials.
    config.endpoint = opts.endpoint;
    config.credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
  }
  // Its calls are compared with the function's IAM role in a test (shared/aws/observe.ts).
  return observed(new DynamoDBClient(config), 'dynamodb');
}

/**
 * One document-client setting for every adapter: `DynamoDBDocumentClient.from` stores its options on
 * the wrapped client's shared config, so two wrappers with different options overwrite each other.
 */
export function documentClient(client: DynamoDBClient): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
}

