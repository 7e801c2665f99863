/**
 * Lets a test see every AWS API call a function makes, so the IAM roles in the packaged template can be
 * compared with what the code really calls (issue 20, item 2: no role granted dynamodb:BatchGetItem, and
 * recovery would have failed in AWS with AccessDenied while every local test passed; see
 * test/integration/template.test.ts and test/helpers/aws-calls.ts).
 *
 * Every client a function builds (the table's, the queues', the parameters') is passed through
 * `observed`, which adds one middleware that reports the service and the operation to an observer on
 * `globalThis`, if one is installed. Nothing installs one in Lambda or `npm start`: there the middleware
 * only looks the observer up and finds none. A global (rather than a module variable) because a test
 * loads each function in a module graph of its own, as Lambda loads each in a process of its own.
 */

/** Who hears the calls: `service` is the IAM prefix (dynamodb, sqs, ssm), `operation` the API name (BatchGetItem). */
export type AwsCallObserver = (service: string, operation: string, input: unknown) => void;

export const AWS_CALL_OBSERVER = Symbol.for('paybridge.awsCallObserver');

interface WithMiddleware {
  middlewareStack: {
    add(middleware: (next: (args: { input: unknown }) => Promise<unknown>, context: { commandName?: string }) => (args: { input: unknown }) => Promise<unknown>, options: { step: 'initialize'; name: string }): void;
  };
}

/** The client, with its calls reported to the installed observer (if any). */
export function observed<C>(client: C, service: string): C {
  (client as unknown as WithMiddleware).middlewareStack.add(
    (next, context) => async (args) => {
      const observer = (globalThis as { [AWS_CALL_OBSERVER]?: AwsCallObserver })[AWS_CALL_OBSERVER];
      // commandName is the low-level operation's even through lib-dynamodb: BatchGetCommand runs BatchGetItemCommand.
      if (observer && context.commandName) observer(service, context.commandName.replace(/Command$/, ''), args.input);
      return next(args);
    },
    { step: 'initialize', name: 'paybridgeObserveCalls' },
  );
  return client;
}
