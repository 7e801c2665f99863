import type { Pacer } from '../../shared/core/pacer.js';
import { EMPTY_LIMITER, type LimiterState } from '../../shared/core/pacing.js';
import type { Outcome } from '../../shared/core/types.js';
import type { LimiterStore } from '../../shared/store/port.js';

/** The limiter item in memory, with the same optimistic concurrency as DynamoLimiterStore, counting writes. */
export class MemoryLimiter implements LimiterStore {
  state: LimiterState = { ...EMPTY_LIMITER, lanes: {} };
  writes = 0;
  async read(): Promise<LimiterState> {
    return structuredClone(this.state);
  }
  async write(_system: string, state: LimiterState, expectedVer: number): Promise<boolean> {
    if (this.state.ver !== Math.max(expectedVer, 0)) return false;
    this.writes++;
    this.state = { ...structuredClone(state), ver: Math.max(expectedVer, 0) + 1 };
    return true;
  }
}

/**
 * What a live stack's pacer learns from a burst at `configured` whose eleventh send meets a limit of 10 (a
 * 429 asking for a second's wait): ten sends accepted in the window before it, so the rate it learns is 10.
 */
export async function burstMeetingLimitOf10(pacer: Pacer, system: string, configured: number): Promise<void> {
  const slots = await pacer.reserve(system, configured, 12, Date.now() + 5_000);
  const posted: Outcome = { type: 'posted', httpStatus: 201, body: {} };
  for (let i = 0; i < 10; i++) await pacer.feedback(system, configured, posted, slots[i]);
  await pacer.feedback(system, configured, { type: 'rate_limited', httpStatus: 429, waitMs: 1_000, message: 'Rate limit is exceeded' }, slots[10]);
}
