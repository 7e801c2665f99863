import { awsDeps } from '../shared/deps.js';
import { makeHandler } from './retry-worker.js';

export const handler = makeHandler(awsDeps());
