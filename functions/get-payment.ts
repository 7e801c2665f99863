import { recordPk } from '../shared/core/types.js';
import { awsDeps, type AppDeps } from '../shared/deps.js';
import { publicView } from '../shared/http/payments.js';
import { ProblemError } from '../shared/http/problem.js';
import { httpRoute } from '../shared/http/route.js';

/** GET /v1/payments/{system}/{key}: the record's status, attempts, timestamps and downstream result. */
export const makeHandler = (getDeps: () => Promise<AppDeps>) =>
  httpRoute({
    getDeps,
    takesBody: false,
    async handle(req, deps) {
      const system = req.pathParameters.system ?? '';
      const key = req.pathParameters.key ?? '';
      const module = deps.modules.get(system);
      if (!module) {
        throw new ProblemError(404, 'unknown-system', 'Unknown system', `There is no system "${system}". Known: ${[...deps.modules.keys()].join(', ')}.`);
      }
      const ids = module.routeKey(key);
      const record = ids ? await deps.store.get(recordPk(system, ids.tenant, ids.key)) : undefined;
      if (!record) throw new ProblemError(404, 'payment-not-found', 'Payment not found', `No ${system} payment with key "${key}" has been received.`);
      return { status: 200, body: publicView(record, module), headers: { 'cache-control': 'no-store' } };
    },
  });

export const handler = makeHandler(awsDeps({ systems: [] }));
