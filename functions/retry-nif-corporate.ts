import { awsDeps } from '../shared/deps.js';
import { makeHandler } from './retry-worker.js';

/** The nif-corporate retry worker: its own queue, its own parameters. */
export const handler = makeHandler(awsDeps({ systems: ['nif-corporate'] }), 'nif-corporate');
