import { describe, expect, it } from 'vitest';
import { CLI_SYSTEMS, recordPkOf } from '../../../shared/cli/systems.js';
import { SYSTEM_NAMES } from '../../../shared/config.js';

describe('the systems the command knows', () => {
  it('are the configuration\'s systems, in the same order', () => {
    expect([...CLI_SYSTEMS]).toEqual([...SYSTEM_NAMES]);
  });

  it('turn a status-route key into the record key through the system module', async () => {
    expect((await recordPkOf('nif-membership', '4568:3248')).pk).toBe('nif-membership#4568#4568:3248');
    expect((await recordPkOf('cambio', 'c-1')).pk).toBe('cambio#default#c-1');
    await expect(recordPkOf('nif-membership', 'no-club')).rejects.toThrow(/is not a nif-membership key/);
    await expect(recordPkOf('paypal', 'x')).rejects.toThrow(/unknown system "paypal"/);
  });
});
