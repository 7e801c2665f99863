import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import dynalite from 'dynalite';

/** What the table's stream hands the events pipe for one write (StreamViewType NEW_IMAGE), in DynamoDB JSON. */
export interface StreamRecord {
  eventName: 'INSERT' | 'MODIFY';
  eventSource: 'aws:dynamodb';
  dynamodb: { Keys: { pk: unknown }; NewImage: Record<string, Record<string, unknown>>; StreamViewType: 'NEW_IMAGE' };
}

/**
 * The records table's stream as the events pipe sees it, for a local stack: dynalite behind a loopback
 * proxy that keeps the item of every PutItem DynamoDB accepted and that carries `eventNew` (the pipe's
 * filter, shared/aws/stack.ts). A record is only ever written whole by PutItem (shared/store/dynamo.ts,
 * claim and replace), so that item is the write's new image. A write that failed its condition made no
 * stream record and is not kept. The one UpdateItem on a record, the relay's clear, also makes a stream
 * record; it is not kept here, as it removes eventNew (event-bus.test.ts checks its image against the filter).
 */
export async function streamTap(): Promise<{ endpoint: string; records: StreamRecord[]; close(): Promise<void> }> {
  const db = dynalite({ createTableMs: 0 });
  await new Promise<void>((resolve) => db.listen(0, '127.0.0.1', () => resolve()));
  const target = `http://127.0.0.1:${(db.address() as AddressInfo).port}`;
  const records: StreamRecord[] = [];
  const proxy = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const body = Buffer.concat(chunks);
        const headers = Object.fromEntries(Object.entries(req.headers).filter(([name, v]) => typeof v === 'string' && !['host', 'connection', 'content-length'].includes(name))) as Record<string, string>;
        try {
          const answer = await fetch(`${target}${req.url ?? '/'}`, { method: req.method ?? 'POST', headers, ...(body.length > 0 ? { body } : {}), signal: AbortSignal.timeout(20_000) });
          const text = await answer.text();
          if (answer.ok && headers['x-amz-target'] === 'DynamoDB_20120810.PutItem') {
            const item = (JSON.parse(body.toString('utf8')) as { Item: Record<string, Record<string, unknown>> }).Item;
            if (item.eventNew) records.push({ eventName: 'MODIFY', eventSource: 'aws:dynamodb', dynamodb: { Keys: { pk: item.pk }, NewImage: item, StreamViewType: 'NEW_IMAGE' } });
          }
          res.writeHead(answer.status, Object.fromEntries([...answer.headers].filter(([name]) => name !== 'content-length' && name !== 'content-encoding' && name !== 'transfer-encoding'))).end(text);
        } catch (err) {
          res.writeHead(502).end(String(err));
        }
      })();
    });
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    records,
    close: async () => {
      proxy.closeAllConnections();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
      await new Promise<void>((resolve) => db.close(() => resolve()));
    },
  };
}

/**
 * An EventBridge Pipes InputTemplate applied to one source record: each `<$.path>` (dot notation) is replaced
 * by the value there. Every placeholder of ours is quoted, so a string goes in with JSON's escapes, as the
 * pipe does to keep the output valid JSON. A path the record lacks is an error here: what the pipe would do
 * with it is not something a template of ours may depend on.
 */
export function pipeInput(template: string, record: unknown): unknown {
  const text = template.replace(/<\$\.([A-Za-z0-9_.-]+)>/g, (_, path: string) => {
    let at: unknown = record;
    for (const part of path.split('.')) at = at && typeof at === 'object' ? (at as Record<string, unknown>)[part] : undefined;
    if (at === undefined) throw new Error(`the InputTemplate names $.${path}, which the stream record does not hold`);
    return typeof at === 'string' ? JSON.stringify(at).slice(1, -1) : JSON.stringify(at);
  });
  return JSON.parse(text);
}

/**
 * Whether an EventBridge Pipes filter pattern takes one source record: each field of the pattern must
 * match, an object by its fields, an array by any of its entries. Only what our pipe's filter uses is
 * modelled (a literal, or `{ exists: true|false }`); anything else is an error rather than a guess.
 */
export function pipeTakes(pattern: unknown, record: unknown): boolean {
  if (Array.isArray(pattern)) {
    return pattern.some((p) => {
      if (p && typeof p === 'object') {
        const rule = p as Record<string, unknown>;
        if (Object.keys(rule).length !== 1 || typeof rule.exists !== 'boolean') throw new Error(`pipeTakes: unsupported rule ${JSON.stringify(p)}`);
        return rule.exists === (record !== undefined);
      }
      return record === p;
    });
  }
  if (pattern && typeof pattern === 'object') {
    return Object.entries(pattern as Record<string, unknown>).every(([k, sub]) => {
      const at = record && typeof record === 'object' ? (record as Record<string, unknown>)[k] : undefined;
      // A nested object in a pattern needs the field itself; only `exists: false` may match its absence.
      return Array.isArray(sub) ? pipeTakes(sub, at) : at !== undefined && pipeTakes(sub, at);
    });
  }
  throw new Error(`pipeTakes: unsupported pattern ${JSON.stringify(pattern)}`);
}
