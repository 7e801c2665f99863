import middy from '@middy/core';
import { awsConsoleDeps } from '../shared/console/aws.js';
import { makeConsoleHandler } from '../shared/console/handler.js';
import { logInvocation } from '../shared/log.js';

/**
 * The operator console in AWS (issue 22): the page, its files (inlined into this bundle: shared/aws/esbuild-plugins.cjs)
 * and its JSON API under /console, behind the console's own authorizer (functions/console-authorize.ts).
 * The same handler serves /console under npm start (shared/local/stack.ts).
 */
export const handler = middy(makeConsoleHandler(awsConsoleDeps())).use(logInvocation());
