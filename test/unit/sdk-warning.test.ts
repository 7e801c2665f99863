import { SQSClient } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';

describe('the AWS SDK Node version warning under vitest', () => {
  it('is switched off by the SDK’s own variable (vitest.config.ts), not by hiding warnings', async () => {
    const seen: string[] = [];
    const listen = (w: Error) => seen.push(w.message);
    process.on('warning', listen);
    try {
      // The SDK checks the Node version when the first client of a process is made; this file is its own process.
      new SQSClient({ region: 'eu-north-1' }).destroy();
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', listen);
    }
    expect(process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED).toBe('true');
    expect(seen.filter((m) => m.includes('NodeVersionSupportWarning'))).toEqual([]);
  });
});
