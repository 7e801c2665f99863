import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { processRecord } from '../shared/core/engine.js';
import type { AppDeps } from '../shared/deps.js';
import { hashId } from '../shared/log.js';
import { parseRetryMessage } from '../shared/queue/port.js';

/**
 * SQS-triggered with ReportBatchItemFailures. A 429 or any other planned retry is re-sent by the
 * engine as a new delayed message and this one is acknowledged, so rate limits never count towards
 * maxReceiveCount; only a real crash (a thrown error) reports the item as failed and ends in the DLQ.
 */
export const makeHandler = (getDeps: () => Promise<AppDeps>) =>
  middy<SQSEvent, SQSBatchResponse, Error, Context>().handler(async (event, context) => {
    const deps = await getDeps();
    const batchItemFailures: SQSBatchResponse['batchItemFailures'] = [];
    await Promise.all(
      event.Records.map(async (message) => {
        try {
          const { pk, reason } = parseRetryMessage(message.body);
          const deadline = Date.now() + context.getRemainingTimeInMillis() - 1_000;
          const did = await processRecord(deps, pk, `${context.awsRequestId}:${message.messageId}`, deadline);
          deps.log.debug('retry message handled', { ref: hashId(pk), reason, did });
        } catch (err) {
          deps.log.error('retry message failed', { messageId: message.messageId, error: err });
          batchItemFailures.push({ itemIdentifier: message.messageId });
        }
      }),
    );
    return { batchItemFailures };
  });
