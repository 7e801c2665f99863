import middy from '@middy/core';
import type { Context, ScheduledEvent } from 'aws-lambda';
import { sweep, type SweepReport } from '../shared/core/recovery.js';
import { awsDeps, type AppDeps } from '../shared/deps.js';

/**
 * EventBridge, every minute: unfinished attempts (a dead or timed-out worker, a lost message), probes of
 * failing systems, and the numbers the alarms watch. It sends nothing downstream: it only queues.
 */
export const makeHandler = (getDeps: () => Promise<AppDeps>) =>
  middy<ScheduledEvent, SweepReport, Error, Context>().handler(async () => {
    const deps = await getDeps();
    return sweep(deps, [...deps.modules.keys()]);
  });

// Its role reads only the common parameters: the rates come in its environment (serverless.yml).
export const handler = makeHandler(awsDeps({ systems: [] }));
