import { awsDeps } from '../shared/deps.js';
import { makeHandler } from './retry-worker.js';

/** The cambio retry worker: its own queue, its own parameters. */
export const handler = makeHandler(awsDeps({ systems: ['cambio'] }), 'cambio');
