import middy from '@middy/core';
import type { Context, ScheduledEvent } from 'aws-lambda';
import { awsDeps, type AppDeps } from '../shared/deps.js';
import { runKontantanalysSync, type RunSummary } from '../shared/systems/kontantanalys/sync.js';

/** EventBridge (daily by default): pending Kontantanalys changes, timelinessDate refresh, run summary. */
export const makeHandler = (getDeps: () => Promise<AppDeps>) =>
  middy<ScheduledEvent, RunSummary, Error, Context>().handler(async (_event, context) => runKontantanalysSync(await getDeps(), `sync:${context.awsRequestId}`));

export const handler = makeHandler(awsDeps({ systems: ['kontantanalys'] }));
