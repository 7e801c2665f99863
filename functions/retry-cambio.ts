import { awsDeps } from '../shared/deps.js';
import { logInvocation } from '../shared/log.js';
import { sqsQueue } from '../shared/queue/sqs.js';
import { dynamoTable } from '../shared/store/dynamo.js';
import { cambioModule } from '../shared/systems/cambio/index.js';
import { makeHandler } from './retry-worker.js';

/** The cambio retry worker: its own queue, its own parameters, its own system's client only. */
export const handler = makeHandler(awsDeps({ modules: [cambioModule], table: dynamoTable, queue: sqsQueue }), 'cambio').use(logInvocation());
