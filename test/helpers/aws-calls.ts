import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AWS_CALL_OBSERVER, type AwsCallObserver } from '../../shared/aws/observe.js';

/** One AWS API call a function made: `dynamodb:BatchGetItem`, and the table keys it named (DynamoDB only). */
export interface AwsCall {
  action: string;
  keys: string[];
}

/** The partition keys a DynamoDB request names, marshalled (`{pk:{S}}`) or not. */
function keysOf(input: unknown): string[] {
  const pkOf = (item: unknown): string | undefined => {
    const pk = (item as { pk?: unknown } | undefined)?.pk;
    if (typeof pk === 'string') return pk;
    const s = (pk as { S?: unknown } | undefined)?.S;
    return typeof s === 'string' ? s : undefined;
  };
  const i = input as { Key?: unknown; Item?: unknown; RequestItems?: Record<string, { Keys?: unknown[] }>; KeyConditionExpression?: unknown; ExpressionAttributeValues?: Record<string, unknown> };
  // A Query's partition key is the one string value its key condition names (the sort keys here are numbers);
  // a filter's values (the console's status or system filter, an audit entry's key) are not keys.
  const inKey = new Set(String(i?.KeyConditionExpression ?? '').match(/:[A-Za-z0-9_]+/g) ?? []);
  const queried = i?.KeyConditionExpression
    ? Object.entries(i.ExpressionAttributeValues ?? {}).filter(([name]) => inKey.has(name)).map(([, v]) => (typeof v === 'string' ? v : (v as { S?: unknown })?.S)).filter((v) => typeof v === 'string')
    : [];
  const found = [pkOf(i?.Key), pkOf(i?.Item), ...Object.values(i?.RequestItems ?? {}).flatMap((r) => (r.Keys ?? []).map(pkOf)), ...(queried as string[])];
  return found.filter((k): k is string => k !== undefined);
}

/**
 * Records, per function, every AWS call made while that function runs (shared/aws/observe.ts reports
 * them). The function is whatever `as(name, ...)` is running: the context follows the call's promises and
 * timers, so a call made later by the same invocation still counts for it. Calls outside any function
 * (a test's own setup) are not recorded.
 */
export class AwsCallRecorder {
  readonly calls = new Map<string, AwsCall[]>();
  private readonly current = new AsyncLocalStorage<string>();
  private readonly observer: AwsCallObserver = (service, operation, input) => {
    const fn = this.current.getStore();
    if (!fn) return;
    this.calls.set(fn, [...(this.calls.get(fn) ?? []), { action: `${service}:${operation}`, keys: service === 'dynamodb' ? keysOf(input) : [] }]);
  };

  install(): this {
    (globalThis as { [AWS_CALL_OBSERVER]?: AwsCallObserver })[AWS_CALL_OBSERVER] = this.observer;
    return this;
  }

  uninstall(): void {
    delete (globalThis as { [AWS_CALL_OBSERVER]?: AwsCallObserver })[AWS_CALL_OBSERVER];
  }

  as<T>(fn: string, run: () => Promise<T>): Promise<T> {
    return this.current.run(fn, run);
  }

  /** Every call one function made. */
  callsOf(fn: string): AwsCall[] {
    return this.calls.get(fn) ?? [];
  }

  /** The actions one function called, sorted. */
  actions(fn: string): string[] {
    return [...new Set((this.calls.get(fn) ?? []).map((c) => c.action))].sort();
  }
}

/** An AWS JSON-protocol endpoint on loopback: `answer(operation, input)` for each `x-amz-target`. */
async function jsonProtocolServer(answer: (operation: string, input: Record<string, unknown>) => Record<string, unknown>): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const target = String(req.headers['x-amz-target'] ?? '');
      let status = 200;
      let body: Record<string, unknown>;
      try {
        body = answer(target.slice(target.indexOf('.') + 1), JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>);
      } catch (err) {
        status = 400;
        body = { __type: 'ValidationException', message: (err as Error).message };
      }
      res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
      res.end(JSON.stringify(body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * Parameter Store on loopback, for `AWS_ENDPOINT_URL_SSM`: GetParametersByPath (one level, as the
 * functions read it) and GetParameters, over the names given.
 */
export async function fakeSsm(parameters: Record<string, string>) {
  const entry = (name: string) => ({ Name: name, Type: 'SecureString', Value: parameters[name], Version: 1 });
  return jsonProtocolServer((operation, input) => {
    if (operation === 'GetParametersByPath') {
      const path = String(input.Path).replace(/\/$/, '');
      return { Parameters: Object.keys(parameters).filter((n) => n.slice(0, n.lastIndexOf('/')) === path).map(entry) };
    }
    if (operation === 'GetParameters') {
      const names = input.Names as string[];
      return { Parameters: names.filter((n) => n in parameters).map(entry), InvalidParameters: names.filter((n) => !(n in parameters)) };
    }
    throw new Error(`the test's SSM answers GetParametersByPath and GetParameters, not ${operation}`);
  });
}

/**
 * SQS on loopback, for `AWS_ENDPOINT_URL_SQS`: SendMessage keeps each message on its queue (by the queue
 * URL's last segment, the queue's name) until the test takes it to hand to the queue's worker;
 * GetQueueAttributes counts what is kept.
 */
export async function fakeSqs() {
  const queues = new Map<string, string[]>();
  const nameOf = (url: unknown) => String(url).slice(String(url).lastIndexOf('/') + 1);
  const server = await jsonProtocolServer((operation, input) => {
    const name = nameOf(input.QueueUrl);
    const kept = queues.get(name) ?? [];
    if (operation === 'SendMessage') {
      const body = String(input.MessageBody);
      queues.set(name, [...kept, body]);
      return { MessageId: randomUUID(), MD5OfMessageBody: createHash('md5').update(body, 'utf8').digest('hex') };
    }
    if (operation === 'GetQueueAttributes') return { Attributes: { ApproximateNumberOfMessages: String(kept.length) } };
    throw new Error(`the test's SQS answers SendMessage and GetQueueAttributes, not ${operation}`);
  });
  return {
    ...server,
    /** The URL of a queue by name, as CloudFormation's Ref on a queue gives it. */
    urlOf: (name: string) => `${server.url}/000000000000/${name}`,
    /** Takes every message kept on a queue. */
    take(name: string): string[] {
      const kept = queues.get(name) ?? [];
      queues.set(name, []);
      return kept;
    },
    /** Puts messages back on a queue (after `take`). */
    put(name: string, bodies: string[]): void {
      queues.set(name, [...bodies, ...(queues.get(name) ?? [])]);
    },
    /** Forgets them: a lost message, for the sweep to find. */
    drop(name: string): number {
      return this.take(name).length;
    },
  };
}
