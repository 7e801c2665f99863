import { awsDeps } from '../shared/deps.js';
import { logInvocation } from '../shared/log.js';
import { sqsQueue } from '../shared/queue/sqs.js';
import { dynamoTable } from '../shared/store/dynamo.js';
import { kontantanalysModule } from '../shared/systems/kontantanalys/index.js';
import { makeHandler } from './retry-worker.js';

/** The kontantanalys retry worker: its own queue, its own parameters, its own system's client only. */
export const handler = makeHandler(awsDeps({ modules: [kontantanalysModule], table: dynamoTable, queue: sqsQueue }), 'kontantanalys').use(logInvocation());
