import middy from '@middy/core';
import type { Context, ScheduledEvent } from 'aws-lambda';
import { sweep } from '../shared/core/engine.js';
import { awsDeps, type AppDeps } from '../shared/deps.js';

/** EventBridge, every minute: re-enqueues records whose retry is overdue (lost SendMessage, dead worker, expired lease). */
export const makeHandler = (getDeps: () => Promise<AppDeps>) =>
  middy<ScheduledEvent, { enqueued: number; heldOverAnHour: number }, Error, Context>().handler(async () => sweep(await getDeps()));

export const handler = makeHandler(awsDeps());
