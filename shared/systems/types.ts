import type { AmbiguityPolicy, Outcome, PaymentRecord } from '../core/types.js';

/** A request a system module accepted: everything the engine needs to claim and post it. */
export interface ParsedPayment {
  tenant: string;
  /** The idempotency key as the status route shows it. */
  key: string;
  /** The normalised request the module will send; hashed to detect a reused key with another payload. */
  request: Record<string, unknown>;
}

export interface InboundRequest {
  body: unknown;
  /** Lower-cased header names. */
  headers: Record<string, string | undefined>;
}

export type ReconcileResult =
  | { type: 'found'; body: unknown }
  | { type: 'absent' }
  | { type: 'inconclusive'; message: string };

export interface AttemptContext {
  correlationId: string;
  record: PaymentRecord;
}

/** One downstream system: its rules, its client and its error mapping, behind one face. */
export interface SystemModule {
  readonly name: string;
  /** What an ambiguous outcome means for this system (DESIGN.md, "Outcomes"). */
  readonly ambiguity: AmbiguityPolicy;
  /** The rate the shared limiter paces sends to. */
  readonly maxPerSecond: number;
  /** Validates and normalises an inbound request; throws a ProblemError naming each bad field. */
  parse(input: InboundRequest): ParsedPayment;
  /** The tenant and key behind a status-route key, or undefined when the key cannot be this system's. */
  routeKey(key: string): { tenant: string; key: string } | undefined;
  /** Sends once (refreshing credentials once on 401/403) and says what happened. Never throws for a downstream failure. */
  post(request: Record<string, unknown>, ctx: AttemptContext): Promise<Outcome>;
  /** Asks the downstream whether an ambiguous send took effect; systems that cannot be asked leave this out. */
  reconcile?(record: PaymentRecord): Promise<ReconcileResult>;
  /** The request as the status route may show it: personal data beyond ids removed. */
  publicRequest(request: Record<string, unknown>): Record<string, unknown>;
}

/** A system that cannot be called because its configuration is incomplete: the payment is held, not lost. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    message: string,
    readonly missing: string[],
  ) {
    super(message);
  }
}
