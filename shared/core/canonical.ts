import { createHash, createHmac } from 'node:crypto';
import { logHashKey } from '../log.js';

/**
 * Canonical JSON: object keys sorted, no whitespace, undefined members dropped. Two requests that
 * mean the same thing hash the same, whatever order the caller wrote the fields in.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    return JSON.stringify(value) ?? 'null';
  }
  if (Array.isArray(value)) {
    return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  }
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/**
 * What a record keeps of its request to tell a duplicate delivery from a changed one: an HMAC-SHA256
 * of its canonical JSON under LOG_HASH_KEY. Keyed because the request holds personal data (Cambio's
 * `patient`, NIF's `personId`) and the hash outlives it on the record: a plain SHA-256 of a request
 * whose other fields are known gives a personnummer back after a few minutes of trying every one.
 * Changing LOG_HASH_KEY makes an earlier record's payload compare as changed (README, LOG_HASH_KEY).
 */
export function payloadHash(value: unknown, key = logHashKey()): string {
  return createHmac('sha256', key).update(canonicalJson(value)).digest('hex');
}

/**
 * Whether a stored payload hash stands for `value`: made under the current key, or a plain SHA-256 as
 * records written before the hash was keyed hold (they live RECORD_TTL_DAYS): after an upgrade their
 * re-deliveries stay duplicates, not changed payloads.
 */
export function samePayload(stored: string, value: unknown, hashed = payloadHash(value)): boolean {
  return stored === hashed || stored === createHash('sha256').update(canonicalJson(value)).digest('hex');
}
