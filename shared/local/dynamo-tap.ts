import type { IncomingMessage, Server, ServerResponse } from 'node:http';

/**
 * One request that reached the local DynamoDB (dynalite) and its answer, as the wire carried them: the
 * operation from `X-Amz-Target`, the JSON body the SDK sent (marshalled AttributeValues), the HTTP
 * status and the body dynalite answered.
 */
export interface DynamoExchange {
  /** The operation (`PutItem`, `Query`, ...): the part of `X-Amz-Target` after the dot. */
  operation: string;
  request: Record<string, unknown>;
  status: number;
  /** dynalite's answer, JSON text (empty when it sent none). */
  response: string;
  /** Epoch ms when the request arrived and when the answer was sent. */
  startedAt: number;
  endedAt: number;
}

type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * Puts `observe` in front of dynalite's own request handler, before the server listens. Counting at the
 * server sees every client that talks to it (the stack's, the operator command's, a test's), where an
 * SDK middleware would see only the client it is added to. The body is read alongside dynalite (a second
 * `data` listener on the same stream) and the answer is taken from `res.end`, so dynalite's handling is
 * unchanged; an observer that throws is ignored rather than allowed to break the request.
 */
export function tapDynalite(server: Server, observe: (exchange: DynamoExchange) => void): void {
  inFrontOf(server, (req, res) => {
    const startedAt = Date.now();
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    let answer = '';
    onEnd(res, (first) => {
      if (typeof first === 'string') answer = first;
      else if (Buffer.isBuffer(first)) answer = first.toString('utf8');
    });
    res.once('finish', () => {
      const target = String(req.headers['x-amz-target'] ?? '');
      const text = Buffer.concat(chunks).toString('utf8');
      let request: Record<string, unknown>;
      try {
        request = text ? (JSON.parse(text) as Record<string, unknown>) : {};
      } catch {
        // dynalite refuses such a body (400); it is still reported, so nothing that reached it goes uncounted.
        request = { unparsed: text };
      }
      try {
        observe({ operation: target.slice(target.indexOf('.') + 1), request, status: res.statusCode, response: answer, startedAt, endedAt: Date.now() });
      } catch {
        // Observation is for tests and measurements: it must never fail the request it watched.
      }
    });
    return true;
  });
}

/** The DynamoDB operations that write items. */
const WRITE_OPERATIONS = new Set(['PutItem', 'UpdateItem', 'DeleteItem', 'BatchWriteItem', 'TransactWriteItems']);

/**
 * Counts the writes dynalite answers whose request holds `marker` (a key as the wire carries it, e.g.
 * `"S":"endpoint#`), whoever sent them: this process's clients and any other process's (`serverless
 * invoke local` on the stack's tables). Counted when dynalite answers, after it applied the write, so a
 * read that began before the count moved may not show that write, and one that began after it does. A
 * payment whose own fields happen to hold the marker only counts once too many (a list read again).
 */
export function countWrites(server: Server, marker: string): () => number {
  const needle = Buffer.from(marker, 'utf8');
  let count = 0;
  inFrontOf(server, (req, res) => {
    const target = String(req.headers['x-amz-target'] ?? '');
    if (!WRITE_OPERATIONS.has(target.slice(target.indexOf('.') + 1))) return true;
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    onEnd(res, () => {
      // The whole body: a marker split between two chunks is still found.
      if (Buffer.concat(chunks).includes(needle)) count++;
    });
    return true;
  });
  return () => count;
}

/**
 * Runs `before` ahead of the server's own request handlers (registered before it listens); they get the
 * request only when `before` returns true, else `before` has answered it.
 */
function inFrontOf(server: Server, before: (req: IncomingMessage, res: ServerResponse) => boolean): void {
  const original = server.listeners('request') as RequestListener[];
  server.removeAllListeners('request');
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (before(req, res)) for (const listener of original) listener.call(server, req, res);
  });
}

/** Calls `seen` with the first argument of each `res.end` the handler makes, before it takes effect. */
function onEnd(res: ServerResponse, seen: (first: unknown) => void): void {
  const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
  res.end = ((...args: unknown[]) => {
    seen(args[0]);
    return end(...args);
  }) as ServerResponse['end'];
}

/**
 * Counts the requests dynalite is still handling (from arrival to its `res.end`), so the stack can wait
 * for them before closing the database. dynalite's own graceful close waits only for the LevelDB
 * operation running at that moment; a PutItem is several in a row (read, write, index entries), and
 * the next one after the close throws 'Database is closed' outside any handler, which takes the process
 * down. `drained(ms)` turns new requests away from then on and resolves once none is left, or after
 * `ms` at most.
 */
export function trackDynalite(server: Server): { drained(ms: number): Promise<void> } {
  let inFlight = 0;
  let waiters: (() => void)[] = [];
  let closing = false;
  inFrontOf(server, (_req, res) => {
    if (closing) {
      // Past the drain: answered here, as a DynamoDB that is going away, and never handed to dynalite.
      res.writeHead(503, { 'content-type': 'application/x-amz-json-1.0', connection: 'close' });
      res.end(JSON.stringify({ __type: 'com.amazonaws.dynamodb.v20120810#ServiceUnavailableException', message: 'local DynamoDB is closing' }));
      return false;
    }
    inFlight++;
    let done = false;
    onEnd(res, () => {
      if (done) return;
      done = true;
      inFlight--;
      if (inFlight === 0) {
        for (const w of waiters) w();
        waiters = [];
      }
    });
    return true;
  });
  return {
    drained: (ms) => {
      closing = true;
      return inFlight === 0
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, ms);
            waiters.push(() => {
              clearTimeout(timer);
              resolve();
            });
          });
    },
  };
}
