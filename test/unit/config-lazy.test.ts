import { describe, expect, it, vi } from 'vitest';

/**
 * Issue 23 item 3: every function bundles every system's configuration schema but uses the common one and
 * its own system's, so shared/config.ts builds none at import: each is built the first time it parses.
 * zod's object builders are counted as config.ts calls them.
 */
const built = vi.hoisted(() => ({ objects: 0 }));
vi.mock('zod', async (importOriginal) => {
  const zod = await importOriginal<typeof import('zod')>();
  return {
    ...zod,
    object: ((...args: Parameters<typeof zod.object>) => {
      built.objects++;
      return zod.object(...args);
    }) as typeof zod.object,
    strictObject: ((...args: Parameters<typeof zod.strictObject>) => {
      built.objects++;
      return zod.strictObject(...args);
    }) as typeof zod.strictObject,
  };
});

describe('configuration schemas', () => {
  it('none is built at import; parsing builds the common one, a system its own on first use, once', async () => {
    const { parseConfig } = await import('../../shared/config.js');
    expect(built.objects).toBe(0);
    const config = parseConfig({ API_KEYS: 'pb_test_key', CAMBIO_MAX_RPS: '7' });
    expect(built.objects).toBe(1);
    expect(config.system('cambio').CAMBIO_MAX_RPS).toBe(7);
    expect(built.objects).toBe(2);
    parseConfig({ API_KEYS: 'pb_test_key' }).system('cambio');
    // The second configuration reuses both schemas.
    expect(built.objects).toBe(2);
  });
});
