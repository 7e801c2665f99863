import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration tests each start their own dynalite and simulators on port 0; files may run in parallel.
    pool: 'forks',
    env: { LOG_LEVEL: 'silent' },
  },
});
