import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { documentClient, makeDynamoClient } from '../../shared/store/dynamo.js';
import { testStack } from '../helpers/stack.js';

/**
 * CI once died of 'Database is closed' thrown inside dynalite: a stack closed while writes were still
 * in it (a PutItem is several LevelDB steps; dynalite's own close waits only for the one running).
 */
describe('closing the local stack while writes are in flight', () => {
  it('the client gone first: its requests still in dynalite finish, later ones are turned away; nothing is thrown outside a handler', async () => {
    const thrown: unknown[] = [];
    const onUncaught = (err: unknown) => thrown.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      for (let round = 0; round < 3; round++) {
        const stack = await testStack();
        const client = makeDynamoClient({ endpoint: stack.dynamoEndpoint });
        const doc = documentClient(client);
        // Items with index attributes, so each put also writes index entries after the item.
        const writes = Array.from({ length: 1000 }, (_, i) =>
          doc.send(new PutCommand({ TableName: 'paybridge-records', Item: { pk: `test#t#${round}-${i}`, dueShard: 'x#due#0', nextAttemptAt: i, statusShard: 'x#s#0', createdMs: i } })).then(
            () => 'ok',
            () => 'refused',
          ),
        );
        await new Promise((resolve) => setTimeout(resolve, 50));
        // As the stack's own close does with its client: the sockets go first, dynalite's handlers go on.
        client.destroy();
        await stack.close();
        const outcomes = await Promise.all(writes);
        expect(outcomes.length).toBe(1000);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(thrown).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
    }
  }, 30_000);
});
