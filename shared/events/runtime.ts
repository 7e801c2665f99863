import type { AppDeps } from '../deps.js';
import { makeDynamoClient } from '../store/client.js';
import { parseWebhookSecrets } from '../http/callers.js';
import { EventStore } from './store.js';
import type { UrlPolicy } from './ssrf.js';

/** What the event routes need besides the deps every handler gets. */
export interface EventsRuntime {
  store: EventStore;
  policy: UrlPolicy;
  /** A delivery was made or is due again: the local stack's deliverer sends it now (in AWS the delivery function's schedule does). */
  kick(endpointId: string): void;
}

const attached = new WeakMap<AppDeps, EventsRuntime>();
const built = new WeakMap<AppDeps, EventsRuntime>();

/** The local stack gives its deps its own relay, deliverer and the loopback allowance. */
export function attachEvents(deps: AppDeps, runtime: EventsRuntime): void {
  attached.set(deps, runtime);
}

/** The deployed default: the table from the config, https to public addresses only, nothing sent in-process. */
export function eventsRuntime(deps: AppDeps): EventsRuntime {
  const own = attached.get(deps) ?? built.get(deps);
  if (own) return own;
  const runtime: EventsRuntime = {
    store: new EventStore(makeDynamoClient({ endpoint: deps.config.DYNAMODB_ENDPOINT, region: deps.config.AWS_REGION }), deps.config.TABLE_NAME, deps.clock),
    policy: { allowLoopback: false },
    kick: () => undefined,
  };
  built.set(deps, runtime);
  return runtime;
}

/** Every configured caller (API keys and webhook senders): the owners of endpoints. */
export function configuredCallers(deps: Pick<AppDeps, 'config'>): string[] {
  const senders = deps.config.WEBHOOK_SECRET ? parseWebhookSecrets(deps.config.WEBHOOK_SECRET).map((s) => s.sender) : [];
  return [...new Set([...deps.config.apiKeys.map((k) => k.caller), ...senders])];
}
