import { readFileSync } from 'node:fs';
import { parse, type Tags } from 'yaml';
import { describe, expect, it } from 'vitest';
import { HTTP_ROUTES } from '../../shared/local/routes.js';
import { TABLE_KEYS } from '../../shared/store/table.js';

// CloudFormation short forms, kept as plain objects so the test can look inside them.
const cfnTags: Tags = ['Ref', 'GetAtt', 'Join', 'Sub', 'Select', 'Split', 'If', 'Equals', 'ImportValue'].flatMap((name) => [
  { tag: `!${name}`, resolve: (v: unknown) => ({ [`Fn::${name}`]: v }) } as never,
  { tag: `!${name}`, collection: 'seq', resolve: (v: { toJSON(): unknown }) => ({ [`Fn::${name}`]: v.toJSON() }) } as never,
]);

const sls = parse(readFileSync(new URL('../../serverless.yml', import.meta.url), 'utf8'), { customTags: cfnTags }) as any;
const resources = sls.resources.Resources as Record<string, any>;

describe('serverless.yml essentials', () => {
  it('declares exactly the HTTP routes the local stack serves', () => {
    const declared = Object.entries(sls.functions as Record<string, any>).flatMap(([name, fn]) =>
      (fn.events ?? []).filter((e: any) => e.http).map((e: any) => `${name} ${e.http.method.toUpperCase()} ${e.http.path}`),
    );
    expect(declared.sort()).toEqual(HTTP_ROUTES.map((r) => `${r.function} ${r.method} ${r.path}`).sort());
  });

  it('runs the retry worker from SQS with partial batch failures, and the sweep every minute', () => {
    const worker = sls.functions.retryWorker;
    expect(worker.events[0].sqs).toMatchObject({ functionResponseType: 'ReportBatchItemFailures', arn: { 'Fn::GetAtt': 'RetryQueue.Arn' } });
    expect(sls.functions.sweep.events[0].schedule.rate).toBe('rate(1 minute)');
  });

  it('gives the retry queue a DLQ and a visibility timeout of at least 6x the worker timeout', () => {
    const queue = resources.RetryQueue.Properties;
    expect(queue.RedrivePolicy.deadLetterTargetArn).toEqual({ 'Fn::GetAtt': 'RetryDeadLetterQueue.Arn' });
    expect(queue.RedrivePolicy.maxReceiveCount).toBeGreaterThanOrEqual(3);
    expect(queue.VisibilityTimeout).toBeGreaterThanOrEqual(6 * sls.custom.workerTimeout);
    expect(sls.functions.retryWorker.timeout).toBe('${self:custom.workerTimeout}');
  });

  it('declares the table as the code uses it: on demand, TTL, point-in-time recovery, the due index', () => {
    const t = resources.RecordsTable.Properties;
    expect(t.BillingMode).toBe('PAY_PER_REQUEST');
    expect(t.TimeToLiveSpecification).toEqual({ AttributeName: TABLE_KEYS.ttlAttribute, Enabled: true });
    expect(t.PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled).toBe(true);
    expect(t.KeySchema).toEqual([{ AttributeName: TABLE_KEYS.partitionKey, KeyType: 'HASH' }]);
    expect(t.GlobalSecondaryIndexes[0]).toMatchObject({
      IndexName: TABLE_KEYS.dueIndex,
      KeySchema: [
        { AttributeName: TABLE_KEYS.dueIndexHash, KeyType: 'HASH' },
        { AttributeName: TABLE_KEYS.dueIndexRange, KeyType: 'RANGE' },
      ],
    });
    expect(resources.RecordsTable.DeletionPolicy).toBe('Retain');
  });

  it('gives every function its own role with no wildcard actions and no wildcard data resources', () => {
    for (const [name, fn] of Object.entries(sls.functions as Record<string, any>)) {
      expect(fn.role, name).toBeTruthy();
      const role = resources[fn.role];
      expect(role?.Type, name).toBe('AWS::IAM::Role');
      for (const st of role.Properties.Policies.flatMap((p: any) => p.PolicyDocument.Statement)) {
        for (const action of [st.Action].flat()) expect(action, `${name}: ${action}`).not.toContain('*');
        expect(st.Resource, name).not.toBe('*');
      }
    }
  });

  it('keeps secrets out of the plain environment: they are read from SSM under the stage prefix', () => {
    const env = sls.provider.environment as Record<string, unknown>;
    expect(env.SECRETS_PARAMETER_PREFIX).toBe('${self:custom.ssmPrefix}');
    for (const name of Object.keys(env)) expect(name).not.toMatch(/SECRET$|PASSWORD|TOKEN|API_KEYS|SUBSCRIPTION_KEY/);
  });
});
