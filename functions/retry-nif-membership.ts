import { awsDeps } from '../shared/deps.js';
import { makeHandler } from './retry-worker.js';

/** The nif-membership retry worker: its own queue, its own parameters. */
export const handler = makeHandler(awsDeps({ systems: ['nif-membership'] }), 'nif-membership');
