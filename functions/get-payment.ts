import { addressErrors } from '../shared/core/keys.js';
import { recordPk } from '../shared/core/types.js';
import { awsDeps, type AppDeps } from '../shared/deps.js';
import { publicView, visibleTo } from '../shared/http/payments.js';
import { inScope } from '../shared/http/scopes.js';
import { isRunSummary, noRunYet, runSummaryFor } from '../shared/http/run-summary.js';
import { ProblemError } from '../shared/http/problem.js';
import { httpRoute } from '../shared/http/route.js';
import { logInvocation } from '../shared/log.js';
import { dynamoTable } from '../shared/store/dynamo.js';
import { DESCRIPTIONS } from '../shared/systems/descriptions.js';

/** GET /v1/payments/{system}/{key}: the record's status, attempts, timestamps and downstream result, to the caller that submitted it. */
export const makeHandler = (getDeps: () => Promise<AppDeps>) =>
  httpRoute({
    getDeps,
    takesBody: false,
    // A signed read is bound to its path and answered once (issue 20 item 8).
    remembersWebhooks: true,
    async handle(req, deps) {
      const system = req.pathParameters.system ?? '';
      const key = req.pathParameters.key ?? '';
      const module = deps.modules.get(system);
      if (!module) {
        throw new ProblemError(404, 'unknown-system', 'Unknown system', `There is no system "${system}". Known: ${[...deps.modules.keys()].join(', ')}.`);
      }
      const ids = module.routeKey(key);
      // Addressable only: a key received before the form rules (NFC, no invisible characters) stays readable.
      const errors = ids ? addressErrors({ system, tenant: ids.tenant, key: ids.key, pointer: 'path:key' }) : [];
      if (errors.length > 0) {
        // Refused before the store is asked: DynamoDB answers an over-long key with a ValidationException (a 500 before issue 13).
        throw new ProblemError(400, 'validation-failed', 'The key cannot be a payment key', `No ${system} payment can have this key, because paybridge refuses such keys when a payment arrives: the key ${errors[0]?.detail}. Send the key exactly as the payment carried it, percent-encoded once.`, errors);
      }
      // Outside the caller's scope the store is not even asked: the same 404 as a key never received (issue 20, item 5).
      const scoped = ids !== undefined && inScope(req.principal.scope, { system, tenant: ids.tenant, key: ids.key });
      const record = ids && scoped ? await deps.store.get(recordPk(system, ids.tenant, ids.key)) : undefined;
      // The scheduled Kontantanalys run's summary exists only after its first run: before that, say so (issue 15).
      const before = record || !scoped ? undefined : noRunYet(system, ids?.key);
      if (before) return { status: 200, body: before, headers: { 'cache-control': 'no-store' } };
      // Another caller's payment is answered as one that does not exist: not even its existence is told.
      if (!record || !visibleTo(record, req.principal)) throw new ProblemError(404, 'payment-not-found', 'Payment not found', `No ${system} payment with key "${key}" has been received.`);
      const view = publicView(record, module);
      // The scheduled run's summary belongs to no caller: each caller reads its own part of it.
      return { status: 200, body: isRunSummary(record) ? runSummaryFor(view, req.principal) : view, headers: { 'cache-control': 'no-store' } };
    },
  });

// Every system's description (keys, what may be shown), none of their clients; a read sends no message.
export const handler = makeHandler(awsDeps({ descriptions: DESCRIPTIONS, table: dynamoTable })).use(logInvocation());
