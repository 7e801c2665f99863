import { createInterface } from 'node:readline/promises';
import { silenceSdkNodeVersionWarning } from '../quiet.js';
import { awsContext, localContext } from './context.js';
import { runCli, UsageError, USAGE } from './main.js';

export async function main(argv: string[]): Promise<number> {
  silenceSdkNodeVersionWarning();
  const stageAt = argv.indexOf('--stage');
  const stage = stageAt >= 0 ? argv[stageAt + 1] : undefined;
  const regionAt = argv.indexOf('--region');
  const region = (regionAt >= 0 ? argv[regionAt + 1] : undefined) ?? process.env.AWS_REGION ?? 'eu-north-1';
  try {
    return await runCli(argv, async () => (stage ? awsContext(stage, region) : localContext()), {
      out: (l) => process.stdout.write(`${l}\n`),
      err: (l) => process.stderr.write(l.startsWith('\r') ? l : `${l}\n`),
      clock: Date.now,
      async confirm(question) {
        if (!process.stdin.isTTY) return false;
        const rl = createInterface({ input: process.stdin, output: process.stderr });
        const answer = await rl.question(question);
        rl.close();
        return /^y(es)?$/i.test(answer.trim());
      },
    });
  } catch (err) {
    process.stderr.write(`paybridge: ${(err as Error).message}\n${err instanceof UsageError ? `\n${USAGE}\n` : ''}`);
    return err instanceof UsageError ? 2 : 1;
  }
}
