import { userInfo } from 'node:os';
import { parseCommandLine, type Run, type Where } from './args.js';
import { STATUSES } from '../core/types.js';
import type { CliContext } from './context.js';
import { UsageError, type Io } from './io.js';
import { CLI_SYSTEMS } from './systems.js';

export { UsageError, type Io } from './io.js';

export const USAGE = `paybridge: operate payments on the local stack (npm start) or, with --stage, a deployed stage

  paybridge payments list [--status S,S] [--system S,S] [--since 2h|2026-11-22T10:00Z] [--caller NAME]
                          [--key-prefix P] [--limit 50] [--cursor C]
                             newest first; every status unless --status names some
  paybridge payments show SYSTEM KEY [--wait]
                             status, schedule, the downstream's answer, checkpoints, history, earlier revisions;
                             --wait: first wait (at most 30 s) while it is retrying or reconciling
  paybridge payments resolve SYSTEM KEY (--posted | --not-posted | --repost) --evidence "..." [--yes]
                             an unknown payment: it arrived / it did not arrive / send it again
  paybridge repost SYSTEM KEY --evidence "..." [--yes]
                             a failed, held or unknown payment sent again, as a new revision
  paybridge redrive [--system S] [--reason "..."] [--yes]
                             held payments, then dead-lettered messages
  paybridge limits [--system S,S]
                             each system's rate limit: the configured ceiling, the rate paced to now, what 429s
                             taught and when the next probe may raise it, a stated limit, a pause, the last 429
  paybridge audit [--limit 50] [--cursor C]
                             operator actions (console and command line), newest first: who, when, what, why, result
  paybridge sign ROUTE BODY [--header "ClubId: 4568"] [--method PUT] [--url URL]
                             a curl for the local stack, signed as a Standard Webhook with its dev secret
  paybridge simulate [--n 40] [--dup 0.25] [--storm 15]
                             a demo burst with duplicates into a 429 storm (local stack only)
  paybridge events list [--limit 50] | show EVENT_ID | resend EVENT_ID
                             the events out of the first API key's caller, each with its deliveries and attempts
  paybridge events recover --endpoint ENDPOINT_ID --since 2h|2026-11-22T10:00Z
                             every event since then delivered again to that endpoint, paced, with progress
  paybridge events tail [--count N] [--timeout 30s]
                             npm start's receiver: each event as it arrives, its signature checked
  paybridge sandbox [SYSTEM] [--fault 403 --fault 403]
                             the local sandboxes' URLs; with --fault, the next calls to SYSTEM's sandbox fail so
                             (429 500 502 503 504 401 403 reset-before reset-after hang-after none)

  Every command: --json (machine-readable output), --by NAME (who acts; default the OS user),
  --stage STAGE [--region eu-north-1] (a deployed stage, through the default AWS credential chain).
  Statuses: ${STATUSES.join(', ')}.
  Systems: ${CLI_SYSTEMS.join(', ')}.`;

/**
 * Runs one command. Each command's code is imported when it is asked for, so `--help` and `payments
 * list` never load the system modules, zod, the SQS client or the simulator (issue 15: every call took
 * about 2 s).
 */
export async function runCli(argv: string[], ctx: (where: Where) => Promise<CliContext>, io: Io): Promise<number> {
  const { values, positionals } = parseCommandLine(argv);
  const [command, sub, ...rest] = positionals;
  if (values.help || !command || command === 'help') {
    io.out(USAGE);
    return values.help || command === 'help' ? 0 : 2;
  }
  const where: Where = { ...(values.stage ? { stage: values.stage } : {}), region: values.region ?? process.env.AWS_REGION ?? 'eu-north-1' };
  let opened: Promise<CliContext> | undefined;
  const run = (args: string[]): Run => ({
    values,
    args,
    io,
    ctx: () => (opened ??= ctx(where)),
    now: io.clock(),
    by: values.by ?? userInfo().username,
  });

  if (command === 'payments' && sub === 'list') return (await import('./list.js')).list(run(rest));
  if (command === 'payments' && sub === 'show') return (await import('./show.js')).show(run(rest));
  if (command === 'payments' && sub === 'resolve') return (await import('./act.js')).resolve(run(rest));
  if (command === 'repost') return (await import('./act.js')).repostCommand(run(positionals.slice(1)));
  if (command === 'redrive') return (await import('./act.js')).redriveCommand(run(positionals.slice(1)));
  if (command === 'limits') return (await import('./limits.js')).limitsCommand(run(positionals.slice(1)));
  if (command === 'audit') return (await import('./audit.js')).auditCommand(run(positionals.slice(1)));
  if (command === 'sign') return (await import('./sign.js')).sign(run(positionals.slice(1)));
  if (command === 'simulate') return (await import('./simulate.js')).simulateCommand(run(positionals.slice(1)));
  if (command === 'events') return (await import('./events.js')).eventsCommand(run(positionals.slice(1)));
  if (command === 'sandbox') return (await import('./sandbox.js')).sandboxCommand(run(positionals.slice(1)));
  throw new UsageError(`unknown command "${[command, sub].filter(Boolean).join(' ')}"`);
}
