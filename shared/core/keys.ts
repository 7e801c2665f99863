import { validationProblem, type FieldError } from '../http/problem.js';
import { recordPk } from './types.js';

/**
 * DynamoDB refuses a partition key value over 2,048 bytes of UTF-8 with a ValidationException
 * (Amazon DynamoDB Developer Guide, "Service, account, and table quotas": partition key length).
 * A key that long reached the store and came back as a 500 (issue 13).
 */
export const DYNAMODB_PARTITION_KEY_BYTES = 2048;

/**
 * Bytes kept free under DynamoDB's limit for a prefix the record key may gain later (a caller or
 * tenant in front of `<system>#<tenant>#<key>` once several integrators share one table). A key
 * accepted today has to stay addressable after such a change; refusing it now costs nothing, while
 * a stored payment whose key no longer fits could never be read or replayed again.
 */
export const RESERVED_PREFIX_BYTES = 256;

/** The longest record partition key paybridge accepts, in UTF-8 bytes. */
export const MAX_RECORD_PK_BYTES = DYNAMODB_PARTITION_KEY_BYTES - RESERVED_PREFIX_BYTES;

/** The message for a string holding a lone UTF-16 surrogate; schemas use it too, so both say the same. */
export const ILL_FORMED_DETAIL =
  'must be well-formed Unicode: it holds a lone UTF-16 surrogate (half of a character such as an emoji), which cannot be sent as UTF-8 or put in a URL';

/** True when `value` has no lone surrogate, so it survives UTF-8 and encodeURIComponent unchanged. */
export function isWellFormedText(value: string): boolean {
  return value.isWellFormed();
}

export interface KeyRef {
  system: string;
  tenant: string;
  /** The idempotency key as the route received it. */
  key: string;
  /** Where the key came from, for the caller: `#/contactId`, `#/externalId`, `header:Idempotency-Key`, `path:key`, ... */
  pointer: string;
}

/**
 * Whether a key can be stored and addressed: well-formed Unicode (a lone surrogate makes
 * encodeURIComponent throw and has no UTF-8 form) and a record key within the limit above.
 * The read routes ask only this: a record received before the form rules below stays readable.
 * Pure: no store, no clock.
 */
export function addressErrors(ref: KeyRef): FieldError[] {
  if (!isWellFormedText(ref.key) || !isWellFormedText(ref.tenant)) return [{ pointer: ref.pointer, detail: ILL_FORMED_DETAIL }];
  const bytes = Buffer.byteLength(recordPk(ref.system, ref.tenant, ref.key), 'utf8');
  if (bytes > MAX_RECORD_PK_BYTES) {
    const room = MAX_RECORD_PK_BYTES - (bytes - Buffer.byteLength(ref.key, 'utf8'));
    return [{ pointer: ref.pointer, detail: `is too long: at most ${room} bytes of UTF-8 fit in the record key here (this one is ${Buffer.byteLength(ref.key, 'utf8')})` }];
  }
  return [];
}

/**
 * Control (Cc: U+0000-U+001F, U+007F-U+009F) and format (Cf: U+00AD, U+200B-U+200F, U+202A-U+202E,
 * U+2060-U+2064, U+FEFF, ...) characters: nothing, or nothing visible, on screen.
 */
const INVISIBLE = /[\p{Cc}\p{Cf}]/u;

export const NOT_NFC_DETAIL =
  'must be in Unicode normalization form C (NFC): this text has decomposed characters (e.g. "å" sent as "a" and a combining ring), which look the same as their composed form but would be another key, and another payment. Send it NFC-normalised (String.prototype.normalize("NFC"))';
export const INVISIBLE_DETAIL =
  'must not hold control or format characters (such as U+0000, U+FEFF, zero-width spaces, direction marks): they are invisible, so two keys that look the same would be two payments';

/**
 * One visible key is one key (issue 20, item 13): the same text on screen, sent once composed (NFC) and
 * once decomposed (NFD), or with an invisible character inside, became two records and two downstream
 * posts. Such keys are refused rather than normalised: the downstream receives the key as sent (a NIF
 * externalId, a Cambio contactId), so quietly changing it would post something the caller did not send.
 */
export function keyFormErrors(ref: KeyRef): FieldError[] {
  for (const text of [ref.key, ref.tenant]) {
    if (INVISIBLE.test(text)) return [{ pointer: ref.pointer, detail: INVISIBLE_DETAIL }];
    if (text.normalize('NFC') !== text) return [{ pointer: ref.pointer, detail: NOT_NFC_DETAIL }];
  }
  return [];
}

/** Every rule a key must meet to be received: addressable (addressErrors) and one visible key (keyFormErrors). Pure. */
export function keyErrors(ref: KeyRef): FieldError[] {
  const address = addressErrors(ref);
  return address.length > 0 ? address : keyFormErrors(ref);
}

/** Throws a 400 `validation-failed` naming the key's field when the key cannot be stored; nothing is recorded or sent. */
export function assertStorableKey(ref: KeyRef, what = 'request'): void {
  const errors = keyErrors(ref);
  if (errors.length > 0) throw validationProblem(errors, what);
}
