import { awsDeps } from '../shared/deps.js';
import { makeHandler } from './retry-worker.js';

/** The kontantanalys retry worker: its own queue, its own parameters. */
export const handler = makeHandler(awsDeps({ systems: ['kontantanalys'] }), 'kontantanalys');
