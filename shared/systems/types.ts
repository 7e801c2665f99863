import type { Dispatcher } from 'undici';
import type { Config, SystemName } from '../config.js';
import type { AmbiguityPolicy, Outcome, PaymentRecord } from '../core/types.js';

/** A request a system module accepted: everything the engine needs to claim and post it. */
export interface ParsedPayment {
  tenant: string;
  /** The idempotency key as the status route shows it. */
  key: string;
  /** The normalised request the module will send; hashed to detect a reused key with another payload. */
  request: Record<string, unknown>;
  /**
   * Where the key came from (`#/contactId`, `#/externalId`, `header:Idempotency-Key`, `path:externalId`),
   * so a key that cannot be stored is refused naming the caller's field (shared/core/keys.ts).
   */
  keyPointer?: string;
}

export interface InboundRequest {
  body: unknown;
  /** Lower-cased header names. */
  headers: Record<string, string | undefined>;
  /** Decoded path parameters of the route, e.g. Kontantanalys' resource and externalId. */
  pathParameters?: Record<string, string>;
}

export type ReconcileResult =
  | { type: 'found'; body: unknown }
  /** Not there: the engine sends (or, for multi-step systems, resumes) once more. */
  | { type: 'absent' }
  /** Could not tell this time (the read failed): asked again with backoff, then `unknown`. */
  | { type: 'inconclusive'; message: string }
  /** Can never be told (nothing to look it up by): parked as `unknown` at once. */
  | { type: 'unknowable'; message: string };

export interface AttemptContext {
  correlationId: string;
  /** The record as this attempt started it (checkpoints included). */
  record: PaymentRecord;
  /**
   * Aborts at the attempt's deadline: passed to every downstream call (token fetch included), so no
   * request is started, and no socket kept, after the attempt's lease could have been taken over.
   */
  signal: AbortSignal;
  /**
   * Persists progress of a multi-step post (BRP order id, rows, receipt id) before the next step,
   * conditionally on this worker's lease; throws LeaseLostError when another worker took over.
   */
  checkpoint(patch: Record<string, unknown>): Promise<void>;
}

export class LeaseLostError extends Error {
  override readonly name = 'LeaseLostError';
  constructor() {
    super('the lease on this record was lost: another worker owns it now');
  }
}

/**
 * What a function may know of a system without its client or its request schemas (issue 14): its name,
 * what an ambiguous outcome means for it, its pace, and how its records are keyed and shown. The status
 * route and the sweep need only this, so their bundles carry no system's HTTP client.
 */
export interface SystemDescription {
  readonly name: string;
  /** What an ambiguous outcome means for this system (DESIGN.md, "Outcomes"). */
  readonly ambiguity: AmbiguityPolicy;
  /**
   * An attempt is one request (Cambio, NIF): it is held to its send slot where it meets its socket
   * (shared/core/send-slot.ts). Not a system whose attempt reads first or makes several requests (BRP,
   * Kontantanalys): their reads are part of the attempt's time, not a late send.
   */
  readonly sendsOnItsSlot?: boolean;
  /**
   * The rate the shared limiter paces sends to (`<SYSTEM>_MAX_RPS`). Throws a ConfigError when the
   * system's configuration is invalid: read per system and lazily, so one bad value holds one system.
   */
  maxPerSecond(): number;
  /** The tenant and key behind a status-route key, or undefined when the key cannot be this system's. */
  routeKey(key: string): { tenant: string; key: string } | undefined;
  /**
   * Where a record of this system is shown, when it has a route of its own (a Kontantanalys object):
   * the `location` and `statusUrl` of every reply about it. Absent, or undefined for a key: the status
   * route `/v1/payments/<system>/<key>`.
   */
  statusPath?(key: string): string | undefined;
  /** The request with personal data beyond ids replaced, once it has been sent (Cambio's patient header); the request itself when there is none. */
  afterSend?(request: Record<string, unknown>): Record<string, unknown>;
  /** The request as the status route may show it: personal data beyond ids removed. */
  publicRequest(request: Record<string, unknown>): Record<string, unknown>;
  /**
   * The personal values of a request that callers must not see in clear anywhere (NIF's personId and
   * comment): the status route shows `shownAs` wherever the downstream's answer, an error or the
   * history repeats one (NIF's own answer names the person). Absent: nothing to replace.
   */
  personalValues?(request: Record<string, unknown>): PersonalValue[];
}

/** A personal value and what stands in for it in what callers see. */
export interface PersonalValue {
  value: string;
  shownAs: string;
}

/** One downstream system: its description, its request rules, its client and its error mapping, behind one face. */
export interface SystemModule extends SystemDescription {
  /**
   * Gets ready to send before anything is recorded as "sending" (fetches a token): undefined when ready,
   * otherwise the outcome that stops the attempt (nothing was sent). Throws a ConfigError when the
   * system's configuration is incomplete or invalid.
   */
  prepare?(signal: AbortSignal): Promise<Outcome | undefined>;
  /** Validates and normalises an inbound request; throws a ProblemError naming each bad field. */
  parse(input: InboundRequest): ParsedPayment;
  /** Sends once (refreshing credentials once on 401/403) and says what happened. Never throws for a downstream failure. */
  post(request: Record<string, unknown>, ctx: AttemptContext): Promise<Outcome>;
  /** Asks the downstream whether an ambiguous send took effect; systems that cannot be asked leave this out. */
  reconcile?(record: PaymentRecord, ctx: AttemptContext): Promise<ReconcileResult>;
}

/**
 * Builds one system's module. It names its system before any configuration exists, because the
 * function reads that system's SSM group first (shared/deps.ts): a handler passes the factories of the
 * systems it posts to, and its bundle holds those systems' clients and nothing of the others.
 */
export interface ModuleFactory {
  readonly system: SystemName;
  /** Without a dispatcher, the process's shared keep-alive pool (shared/systems/http.ts); without a clock, Date.now. */
  (config: Config, dispatcher?: Dispatcher, clock?: () => number): SystemModule;
}

/** Builds one system's description: for functions that report on a system without posting to it. */
export interface DescriptionFactory {
  readonly system: SystemName;
  (config: Config): SystemDescription;
}

export function moduleFactory(system: SystemName, build: (config: Config, dispatcher?: Dispatcher, clock?: () => number) => SystemModule): ModuleFactory {
  return Object.assign(build, { system });
}

export function descriptionFactory(system: SystemName, build: (config: Config) => SystemDescription): DescriptionFactory {
  return Object.assign(build, { system });
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

/** Throws a ConfigError naming every one of `keys` that is unset, so the payment is held with a useful message. */
export function requireConfig<K extends string>(config: Partial<Record<K, unknown>>, keys: readonly K[], label: string): void {
  const missing = keys.filter((k) => config[k] === undefined || config[k] === '');
  if (missing.length > 0) throw new ConfigError(`${label} is not configured: set ${missing.join(', ')}`, missing);
}

/** The system's configured rate, or undefined when its configuration cannot give one (one bad value holds one system). */
export function configuredRate(module: Pick<SystemModule, 'maxPerSecond'>): number | undefined {
  try {
    return module.maxPerSecond();
  } catch {
    return undefined;
  }
}
