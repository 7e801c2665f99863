import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration tests each start their own dynalite and simulators on port 0; files may run in parallel.
    pool: 'forks',
    // Most integration files spend their time waiting on timers (backoff, outages, deadlines), not the CPU:
    // three at once keep `npm test` within its three minutes on a 2-core machine, where vitest's default
    // would run one file at a time.
    maxWorkers: 3,
    env: {
      LOG_LEVEL: 'silent',
      // The AWS SDK's own switch for its one NodeVersionSupportWarning (SDK releases after January 2027 will
      // need Node 22; ours are pinned and support Node 20: README, "Node versions"). Each test file is a
      // process of its own and printed it once, a dozen times a run. Every other warning is still shown.
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
  },
});
