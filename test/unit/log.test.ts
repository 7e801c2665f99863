import middy from '@middy/core';
import type { APIGatewayProxyEvent, Context } from 'aws-lambda';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

/** Every JSON line the loggers print while `act` runs (Powertools writes through a Console on stdout and stderr). */
async function printed(act: () => unknown | Promise<unknown>): Promise<Record<string, unknown>[]> {
  const lines: string[] = [];
  const capture = (chunk: string | Uint8Array) => {
    lines.push(...String(chunk).split('\n').filter(Boolean));
    return true;
  };
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(capture as never);
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(capture as never);
  try {
    await act();
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
}

const context = { awsRequestId: 'lambda-req-1', functionName: 'paybridge-test-getPayment', invokedFunctionArn: 'arn:aws:lambda:eu-north-1:1:function:x', memoryLimitInMB: '512', functionVersion: '$LATEST', getRemainingTimeInMillis: () => 10_000 } as unknown as Context;

describe('logging through Powertools Logger behind our Logger interface', () => {
  // Each case imports the module afresh: the process logger reads its level once, from the environment.
  beforeEach(() => vi.resetModules());
  afterEach(() => vi.unstubAllEnvs());
  const load = () => import('../../shared/log.js');

  it('writes JSON lines with level, message, service, timestamp and the bound fields, children adding theirs', async () => {
    vi.stubEnv('LOG_LEVEL', 'info');
    const { createLogger } = await load();
    const log = createLogger({ service: 'paybridge', stage: 'local' });
    const [line] = await printed(() => log.child({ system: 'cambio' }).info('attempt', { outcome: 'posted' }));
    expect(line).toMatchObject({ level: 'INFO', message: 'attempt', service: 'paybridge', stage: 'local', system: 'cambio', outcome: 'posted' });
    expect(typeof line?.timestamp).toBe('string');
  });

  it('takes its level from LOG_LEVEL in either case, and LOG_LEVEL=silent prints nothing at all', async () => {
    vi.stubEnv('LOG_LEVEL', 'warn');
    const { createLogger } = await load();
    const lines = await printed(() => {
      const log = createLogger();
      log.info('not shown');
      log.warn('shown');
    });
    expect(lines.map((l) => l.message)).toEqual(['shown']);
    vi.resetModules();
    vi.stubEnv('LOG_LEVEL', 'silent');
    const quiet = await load();
    expect(await printed(() => quiet.createLogger().error('never'))).toEqual([]);
    expect(await printed(() => quiet.createLogger({}, 'silent').error('never either'))).toEqual([]);
  });

  it('logs an error by name, message and stack only, never the fields it carries (an SDK error can carry a record)', async () => {
    vi.stubEnv('LOG_LEVEL', 'info');
    const { createLogger } = await load();
    const err = Object.assign(new Error('The conditional request failed'), { name: 'ConditionalCheckFailedException', Item: { pk: 'cambio#default#contact-1234', request: { contactId: 'contact-1234' } } });
    const [line] = await printed(() => createLogger().error('settle failed', { error: err }));
    expect(line?.error).toEqual({ name: 'ConditionalCheckFailedException', message: 'The conditional request failed', stack: err.stack });
    expect(JSON.stringify(line)).not.toContain('contact-1234');
  });

  it('keeps hashId: keyed, stable, and not the identifier', async () => {
    const { hashId } = await load();
    expect(hashId('contact-1', 'k')).toBe(hashId('contact-1', 'k'));
    expect(hashId('contact-1', 'k')).not.toBe(hashId('contact-1', 'other'));
    expect(hashId('contact-1', 'k')).toMatch(/^[0-9a-f]{16}$/);
  });

  it('per invocation: the Lambda context and the correlation id on every line, never the event, reset afterwards', async () => {
    vi.stubEnv('LOG_LEVEL', 'info');
    vi.stubEnv('POWERTOOLS_LOGGER_LOG_EVENT', 'true');
    const { createLogger, logInvocation } = await load();
    const log = createLogger({ service: 'paybridge' });
    const handler = middy<APIGatewayProxyEvent, string, Error, Context>()
      .handler(async () => {
        log.info('request', { status: 200 });
        return 'ok';
      })
      .use(logInvocation());
    const event = { body: '{"contactId":"person-77"}', headers: { 'X-Correlation-Id': 'pos-order-9' }, requestContext: { requestId: 'apigw-1' } } as unknown as APIGatewayProxyEvent;
    const lines = await printed(() => handler(event, context));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ message: 'request', correlation_id: 'pos-order-9', function_request_id: 'lambda-req-1', function_name: 'paybridge-test-getPayment' });
    expect(JSON.stringify(lines)).not.toContain('person-77');
    const withoutHeader = await printed(() => handler({ ...event, headers: {} }, context));
    expect(withoutHeader[0]).toMatchObject({ correlation_id: 'apigw-1' });
    const [after] = await printed(() => log.info('between invocations'));
    expect(after).not.toHaveProperty('correlation_id');
  });
});
