import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import type { SystemName } from '../shared/config.js';
import { handleBatch } from '../shared/core/worker.js';
import type { AppDeps } from '../shared/deps.js';

/**
 * One system's retry worker: SQS-triggered with ReportBatchItemFailures. A 429 or any planned retry is
 * re-sent by the engine as a new delayed message and this one is acknowledged, so rate limits never
 * count towards maxReceiveCount; only a thrown error (the store unreachable) reports a message as
 * failed, so SQS redelivers it and finally dead-letters it. Each system has its own queue and worker:
 * one system's fault never sends another system's messages to a dead-letter queue.
 */
export const makeHandler = (getDeps: () => Promise<AppDeps>, system: SystemName) =>
  middy<SQSEvent, SQSBatchResponse, Error, Context>().handler(async (event, context) => {
    const deps = await getDeps();
    // Every attempt must end, and be recorded, before the invocation does.
    // On the deps' clock, which the engine compares it with.
    const deadline = deps.clock() + context.getRemainingTimeInMillis() - 1_000;
    const result = await handleBatch(
      deps,
      system,
      event.Records.map((r) => ({ id: r.messageId, body: r.body })),
      deadline,
    );
    deps.log.debug('retry batch handled', { system, messages: event.Records.length, ...result.counts });
    return { batchItemFailures: result.failed.map((itemIdentifier) => ({ itemIdentifier })) };
  });
