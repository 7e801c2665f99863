import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * The send slot an attempt's request is held to where it leaves (issue 23): the engine checks a slot
 * before it calls the system module, but the request can still wait on a busy event loop between that
 * check and its socket (the token cache, undici's queue, a burst of other requests in the process). The
 * HTTP layer (shared/systems/http.ts) reads this, so no system module needs to carry it: the first request
 * of the attempt that writes (not a GET) is stopped on its socket, unwritten, once `leaveBy` has passed or
 * a 429 heard meanwhile stated a pause its slot falls in (the other sends of the burst would meet the limit).
 * Only for systems whose attempt is that one request (SystemDescription.sendsOnItsSlot).
 */
/** The code of a request not made because it reached its socket after its slot's `leaveBy`: nothing was written. */
export const LATE_CODE = 'PAYBRIDGE_LATE';

/** What the HTTP layer holds a first writing request to: its time, and a pause heard since its slot was given. */
export interface SlotGuard {
  leaveBy: number;
  /** Why this slot may no longer be sent on though its time is not past (a 429's pause it falls in), else undefined. */
  withdrawn?: () => string | undefined;
  /** Past `leaveBy`: whether the send may leave at `now` all the same (a lane permit with room there, moved to it). */
  mayLeaveLate?: (now: number) => boolean;
}

interface SendSlot extends SlotGuard {
  used: boolean;
}

const slot = new AsyncLocalStorage<SendSlot>();

/** Runs `post` with its first writing request held to `guard` (none when undefined). */
export function withSendSlot<T>(guard: SlotGuard | undefined, post: () => Promise<T>): Promise<T> {
  return guard === undefined ? post() : slot.run({ ...guard, used: false }, post);
}

/** For the HTTP layer: the guard of this request when it is the attempt's first writing one (then spent). */
export function takeSendSlot(method: string): SlotGuard | undefined {
  const s = slot.getStore();
  if (!s || s.used || method === 'GET' || method === 'HEAD') return undefined;
  s.used = true;
  const { used: _used, ...guard } = s;
  return guard;
}

/**
 * Runs `f` outside any attempt's send slot: for requests that are not the attempt's send (a token fetch,
 * shared by every attempt waiting for it: held to one attempt's slot, it was stopped for all of them).
 */
export function withoutSendSlot<T>(f: () => T): T {
  return slot.exit(f);
}
