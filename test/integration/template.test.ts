import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HTTP_ROUTES } from '../../shared/local/routes.js';
import { lintTemplate } from '../template/lint.js';

type Json = Record<string, any>;

/** The packaged CloudFormation template, built offline by `serverless package` exactly as deploy would. */
describe('the packaged CloudFormation template', () => {
  let dir: string;
  let template: Json;
  let resources: Json;
  const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'paybridge-package-'));
    execFileSync(process.execPath, ['node_modules/serverless/bin/serverless.js', 'package', '--stage', 'test', '--package', dir], { stdio: 'pipe', timeout: 120_000 });
    template = JSON.parse(readFileSync(join(dir, 'cloudformation-template-update-stack.json'), 'utf8'));
    resources = template.Resources;
  }, 150_000);
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('passes the offline linter (types, properties, required properties, Ref/GetAtt/DependsOn targets)', () => {
    expect(lintTemplate(template)).toEqual([]);
  });

  it('the linter does catch a wrong property, a missing required one and a dangling reference', () => {
    const broken = structuredClone(template);
    broken.Resources.RetryQueue.Properties.VisibilityTimeOut = 30;
    delete broken.Resources.RecordsTable.Properties.KeySchema;
    broken.Resources.RetryQueue.Properties.RedrivePolicy.deadLetterTargetArn = { 'Fn::GetAtt': ['NoSuchQueue', 'Arn'] };
    const problems = lintTemplate(broken);
    expect(problems).toContain('RetryQueue (AWS::SQS::Queue): unknown property VisibilityTimeOut');
    expect(problems).toContain('RecordsTable (AWS::DynamoDB::Table): missing required property KeySchema');
    expect(problems).toContain('RetryQueue: GetAtt on unknown NoSuchQueue');
  });

  it('has every function with its events: HTTP methods, the SQS mapping with partial batch failures, both schedules', () => {
    const functions = ofType('AWS::Lambda::Function');
    // One per route, plus the retry worker, the sweep and the Kontantanalys run.
    expect(functions.length).toBe(HTTP_ROUTES.length + 3);
    const methods = ofType('AWS::ApiGateway::Method').map(([, r]) => r.Properties.HttpMethod).sort();
    expect(methods).toEqual(HTTP_ROUTES.map((r) => r.method).sort());
    const [, mapping] = ofType('AWS::Lambda::EventSourceMapping')[0] as [string, Json];
    expect(mapping.Properties.FunctionResponseTypes).toEqual(['ReportBatchItemFailures']);
    expect(mapping.Properties.EventSourceArn).toEqual({ 'Fn::GetAtt': ['RetryQueue', 'Arn'] });
    const schedules = ofType('AWS::Events::Rule').map(([, r]) => r.Properties.ScheduleExpression).sort();
    expect(schedules).toEqual(['rate(1 day)', 'rate(1 minute)']);
  });

  it('redrives the retry queue to a DLQ, with visibility at least 6x the worker timeout', () => {
    const queue = resources.RetryQueue.Properties;
    expect(queue.RedrivePolicy).toEqual({ deadLetterTargetArn: { 'Fn::GetAtt': ['RetryDeadLetterQueue', 'Arn'] }, maxReceiveCount: 5 });
    const worker = ofType('AWS::Lambda::Function').find(([id]) => id.startsWith('RetryWorker'))?.[1] as Json;
    expect(queue.VisibilityTimeout).toBeGreaterThanOrEqual(6 * worker.Properties.Timeout);
  });

  it('keeps the table with TTL and point-in-time recovery', () => {
    const t = resources.RecordsTable;
    expect(t.Properties.TimeToLiveSpecification).toEqual({ AttributeName: 'ttl', Enabled: true });
    expect(t.Properties.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
    expect(t.DeletionPolicy).toBe('Retain');
  });

  it('grants least privilege: no wildcard actions, no wildcard resources on data, one role per kind of function', () => {
    for (const [id, role] of ofType('AWS::IAM::Role')) {
      for (const st of role.Properties.Policies.flatMap((p: Json) => p.PolicyDocument.Statement)) {
        for (const action of [st.Action].flat()) expect(action, `${id}: ${action}`).not.toMatch(/\*/);
        expect(st.Resource, id).not.toBe('*');
      }
    }
    for (const [, fn] of ofType('AWS::Lambda::Function')) expect(fn.Properties.Role['Fn::GetAtt']?.[0]).toMatch(/Role$/);
  });

  it('alarms on a non-empty DLQ, unknown payments, holds over an hour and retry age', () => {
    const alarms = ofType('AWS::CloudWatch::Alarm').map(([, a]) => a.Properties.MetricName).sort();
    expect(alarms).toEqual(['ApproximateNumberOfMessagesVisible', 'held_over_an_hour', 'oldest_overdue_age', 'unknown']);
  });
});
