import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { MessageKeys, RetryQueue } from '../queue/port.js';
import type { FenceStore, RecordStore } from '../store/port.js';
import type { SystemModule } from '../systems/types.js';
import type { EngineSettings } from './lifecycle.js';
import type { Pacer } from './pacer.js';

/** What the engine's three rooms (intake, attempt, recovery) work with: injected, so tests and the local stack pass their own. */
export interface EngineDeps {
  store: RecordStore;
  fences: FenceStore;
  queue: RetryQueue;
  /** RETRY_MESSAGE_KEY: what a retry worker verifies each message with before reading it (shared/queue/port.ts). */
  messageKeys: MessageKeys;
  /** This container's side of the shared rate limiter, and the fences it mints. */
  pacer: Pacer;
  systems: (name: string) => SystemModule | undefined;
  settings: EngineSettings;
  log: Logger;
  metrics: Metrics;
  clock: () => number;
  random: () => number;
  sleep: (ms: number) => Promise<void>;
  /**
   * Turns for the claims of payments queued at intake (at most `settings.queuedClaimsAtOnce` written at
   * once in this process): a claim before a send, and a worker's fence consume, are not held behind a
   * burst of them. Absent: each is written at once (a Lambda container takes one request at a time).
   */
  queuedClaims?: <T>(write: () => Promise<T>) => Promise<T>;
  /**
   * Fires when this process stops (the local stack's shutdown, or a test's simulated crash): every
   * attempt's signal follows it, so nothing is sent after the process has "died".
   */
  stopping?: AbortSignal;
}
