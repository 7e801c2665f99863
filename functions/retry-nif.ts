import { awsDeps } from '../shared/deps.js';
import { logInvocation } from '../shared/log.js';
import { sqsQueue } from '../shared/queue/sqs.js';
import { dynamoTable } from '../shared/store/dynamo.js';
import { nifModule } from '../shared/systems/nif/index.js';
import { makeHandler } from './retry-worker.js';

/** The nif retry worker: its own queue, its own parameters, its own system's client only. */
export const handler = makeHandler(awsDeps({ modules: [nifModule], table: dynamoTable, queue: sqsQueue }), 'nif').use(logInvocation());
