import middy from '@middy/core';
import type { Context, ScheduledEvent } from 'aws-lambda';
import { sweep, type SweepReport } from '../shared/core/recovery.js';
import { awsDeps, type AppDeps } from '../shared/deps.js';
import { logInvocation } from '../shared/log.js';
import { sqsQueue } from '../shared/queue/sqs.js';
import { dynamoTable } from '../shared/store/dynamo.js';
import { DESCRIPTIONS } from '../shared/systems/descriptions.js';

/**
 * EventBridge, every minute: unfinished attempts (a dead or timed-out worker, a lost message), probes of
 * failing systems, and the numbers the alarms watch. It sends nothing downstream: it only queues.
 */
export const makeHandler = (getDeps: () => Promise<AppDeps>) =>
  middy<ScheduledEvent, SweepReport, Error, Context>().handler(async () => {
    const deps = await getDeps();
    return sweep(deps, [...deps.modules.keys()]);
  });

// Its role reads only the common parameters: the rates come in its environment (serverless.yml). It queues and
// never posts, so it knows every system by its description alone (shared/deps.ts, buildDeps).
export const handler = makeHandler(awsDeps({ descriptions: DESCRIPTIONS, table: dynamoTable, queue: sqsQueue })).use(logInvocation());
