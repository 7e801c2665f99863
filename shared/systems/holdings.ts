import type { AmbiguityPolicy } from '../core/types.js';

/**
 * What a downstream holds of a payment, read from the record's checkpoints (issue 19), for the systems
 * whose post is more than one call: BRP (order, rows, receipt) and Kontantanalys (the object). Pure and
 * free of clients, so the engine's transition function, the CLI and the console can all ask it.
 */

export interface Holding {
  /** What it is, as an operator or a caller reads it: "order 12", "receipt 7". */
  what: string;
  /** False for a step that was requested but whose answer never came (it may or may not exist). */
  confirmed: boolean;
}

export interface HoldingRules {
  holdings(checkpoints: Record<string, unknown>): Holding[];
  /**
   * What a caller's corrected body does with what the downstream holds: `reuse` sends it against the
   * same object (Kontantanalys updates the object it created); `refuse` answers 409 while anything is
   * held (a BRP order with its rows and receipt cannot become another sale).
   */
  revision: 'reuse' | 'refuse';
  /** The checkpoints once an operator established the unconfirmed steps did not happen. */
  withoutUnconfirmed(checkpoints: Record<string, unknown>): Record<string, unknown>;
}

const brp: HoldingRules = {
  holdings(cp) {
    const out: Holding[] = [];
    if (cp.orderId !== undefined) out.push({ what: `order ${String(cp.orderId)}`, confirmed: true });
    else if (cp.orderRequested === true) out.push({ what: 'an order whose id never arrived', confirmed: false });
    const items = cp.items && typeof cp.items === 'object' ? Object.keys(cp.items).length : 0;
    if (items > 0) out.push({ what: `${items} order row${items === 1 ? '' : 's'}`, confirmed: true });
    if (cp.receiptId !== undefined) out.push({ what: `receipt ${String(cp.receiptId)} (the order is paid)`, confirmed: true });
    else if (cp.receiptRequested === true) out.push({ what: 'a receipt that may have paid the order', confirmed: false });
    return out;
  },
  revision: 'refuse',
  withoutUnconfirmed: ({ orderRequested: _o, receiptRequested: _r, ...rest }) => rest,
};

const kontantanalys: HoldingRules = {
  holdings(cp) {
    if (cp.remoteId !== undefined) return [{ what: `object ${String(cp.remoteId)}`, confirmed: true }];
    if (cp.createRequested === true) return [{ what: 'an object whose create was never answered', confirmed: false }];
    return [];
  },
  revision: 'reuse',
  withoutUnconfirmed: ({ createRequested: _c, ...rest }) => rest,
};

/** Single-call systems (Cambio, NIF): what they hold is the payment itself, tracked by `unconfirmed` and `posted`. */
const single: HoldingRules = { holdings: () => [], revision: 'reuse', withoutUnconfirmed: (cp) => cp };

const RULES: Record<string, HoldingRules> = { brp, kontantanalys };

export function holdingRules(system: string): HoldingRules {
  return RULES[system] ?? single;
}

/**
 * Each system's ambiguity policy as its description states it (test/unit/systems/holdings.test.ts keeps
 * the two equal), for the operator's actions, which run without the systems' configuration. A system
 * not listed (a test double) is reconciled first: reading back is the safe way for any system, since
 * one that cannot be asked is then parked for an operator rather than sent again.
 */
const AMBIGUITY: Record<string, AmbiguityPolicy> = { cambio: 'resend', 'nif-membership': 'reconcile', 'nif-corporate': 'reconcile', nif: 'park', brp: 'reconcile', kontantanalys: 'reconcile' };

export function ambiguityOf(system: string): AmbiguityPolicy {
  return AMBIGUITY[system] ?? 'reconcile';
}
