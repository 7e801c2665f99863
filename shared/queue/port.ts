/** A message on the retry queue: it names the record, never carries the payment (the record is the truth). */
export interface RetryMessage {
  pk: string;
  reason: string;
}

export interface RetryQueue {
  /** Sends one message, visible after `delaySeconds` (0..900). */
  send(message: RetryMessage, delaySeconds: number): Promise<void>;
}

export function parseRetryMessage(body: string): RetryMessage {
  const parsed = JSON.parse(body) as Partial<RetryMessage>;
  if (typeof parsed.pk !== 'string' || !parsed.pk) throw new Error('retry message without a record key');
  return { pk: parsed.pk, reason: typeof parsed.reason === 'string' ? parsed.reason : 'unspecified' };
}
