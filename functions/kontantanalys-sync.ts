import middy from '@middy/core';
import type { Context, ScheduledEvent } from 'aws-lambda';
import { awsDeps, type AppDeps } from '../shared/deps.js';
import { logInvocation } from '../shared/log.js';
import { sqsQueue } from '../shared/queue/sqs.js';
import { dynamoTable } from '../shared/store/dynamo.js';
import { runKontantanalysSync, type RunSummary } from '../shared/systems/kontantanalys/sync.js';

/** EventBridge (daily by default): pending Kontantanalys changes, timelinessDate refresh, run summary. */
export const makeHandler = (getDeps: () => Promise<AppDeps>) =>
  middy<ScheduledEvent, RunSummary, Error, Context>().handler(async (_event, context) => runKontantanalysSync(await getDeps(), `sync:${context.awsRequestId}`));

// It reads and reopens records and queues them; the Kontantanalys worker posts them, so no client here.
export const handler = makeHandler(awsDeps({ table: dynamoTable, queue: sqsQueue })).use(logInvocation());
