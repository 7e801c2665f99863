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
   * Turns for the claims of payments queued at intake, taken while a send waits for its permit in this
   * process (`inline`: from its plan until its request was made; a permit due now does not count). Then at
   * most `settings.queuedClaimsAtOnce` are written at once, so that send's claim and request are not held
   * behind a burst of them; otherwise each is written at once (turns at all times held a steady 250/s to
   * what two writes at a time carry). Absent: each is written at once (a Lambda container takes one
   * request at a time).
   */
  queuedClaims?: { turn: <T>(write: () => Promise<T>) => Promise<T>; inline: number };
  /**
   * Fires when this process stops (the local stack's shutdown, or a test's simulated crash): every
   * attempt's signal follows it, so nothing is sent after the process has "died".
   */
  stopping?: AbortSignal;
}
