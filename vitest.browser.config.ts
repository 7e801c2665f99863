import { defineConfig } from 'vitest/config';

/**
 * `npm run test:browser`: the operator console in a real browser (Debian's chromium driven by
 * playwright-core; no browser download). Kept out of `npm test`, whose files must not need a browser.
 */
export default defineConfig({
  test: {
    include: ['test/browser/**/*.browser.ts'],
    environment: 'node',
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 1,
    env: { LOG_LEVEL: 'silent', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
});
