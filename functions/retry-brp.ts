import { awsDeps } from '../shared/deps.js';
import { logInvocation } from '../shared/log.js';
import { sqsQueue } from '../shared/queue/sqs.js';
import { dynamoTable } from '../shared/store/dynamo.js';
import { brpModule } from '../shared/systems/brp/index.js';
import { makeHandler } from './retry-worker.js';

/** The brp retry worker: its own queue, its own parameters, its own system's client only. */
export const handler = makeHandler(awsDeps({ modules: [brpModule], table: dynamoTable, queue: sqsQueue }), 'brp').use(logInvocation());
