import { defineConfig } from 'vitest/config';

/**
 * Files that mock modules, stub clients or set process.env for the code they import, and the one that
 * counts what importing builds: each runs in a process of its own. Every other file shares its worker
 * process with the files before it (isolate: false), which saves the second or so each file otherwise
 * spends importing the AWS SDK, dynalite and the engine again: about a third of `npm test` on this
 * machine. Those files start their own stacks on port 0 and close them in afterAll; none sets globals.
 */
const ISOLATED = [
  'test/unit/config-lazy.test.ts',
  'test/unit/config.test.ts',
  'test/unit/log.test.ts',
  'test/unit/log-hash-key.test.ts',
  'test/unit/metrics.test.ts',
  'test/unit/queue/sqs.test.ts',
  'test/unit/cli/context-aws.test.ts',
  'test/unit/store/dynamo.test.ts',
  'test/unit/functions/authorize.test.ts',
  'test/integration/newcomer.test.ts',
  'test/integration/events-out.test.ts',
  'test/integration/template.test.ts',
];

export default defineConfig({
  test: {
    environment: 'node',
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration tests each start their own dynalite and simulators on port 0; files may run in parallel.
    pool: 'forks',
    // Most integration files spend their time waiting on timers (backoff, outages, deadlines), not the CPU:
    // four at once keep `npm test` within its limit on a 2-core machine, where vitest's default would run
    // one file at a time. Three took 221 s of the 240 allowed on 2026-12-07, four 181 s (same machine, same hour).
    maxWorkers: 4,
    env: {
      LOG_LEVEL: 'silent',
      // The AWS SDK's own switch for its one NodeVersionSupportWarning (SDK releases after January 2027 will
      // need Node 22; ours are pinned and support Node 20: README, "Node versions"). Each worker process
      // printed it once, a dozen times a run. Every other warning is still shown.
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
    projects: [
      { extends: true, test: { name: 'shared', include: ['test/**/*.test.ts'], exclude: ISOLATED, isolate: false } },
      { extends: true, test: { name: 'isolated', include: ISOLATED } },
    ],
  },
});
