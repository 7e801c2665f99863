import { descriptionFactory, type SystemDescription } from '../types.js';
import type { CambioRequest } from './schema.js';

export const CAMBIO = 'cambio';
/** Cambio has one tenant per deployment: the record key is the contactId alone. */
export const CAMBIO_TENANT = 'default';

/** Cambio without its client or schemas: what the status route and the sweep need. */
export const cambioDescription = descriptionFactory(CAMBIO, (config): SystemDescription => ({
  name: CAMBIO,
  // Setting PAID on a contact is a state change: sending it twice leaves the same state.
  ambiguity: 'resend',
  sendsOnItsSlot: true,
  maxPerSecond: () => config.system(CAMBIO).CAMBIO_MAX_RPS,
  routeKey: (key) => (key ? { tenant: CAMBIO_TENANT, key } : undefined),
  // The patient header is needed for the post only: once nothing will send the notice again, the record
  // keeps that one was given, not what it was (the record lives RECORD_TTL_DAYS, 400 days by default).
  afterSend(request) {
    const { patient, ...rest } = request as unknown as CambioRequest;
    return patient === undefined ? request : { ...rest, patientGiven: true };
  },
  publicRequest(request) {
    const { patient, patientGiven, ...rest } = request as unknown as CambioRequest & { patientGiven?: boolean };
    // The patient header identifies a person beyond the contact: say that it was given, not what it was.
    return { ...rest, ...(patient || patientGiven ? { patient: 'provided (not shown)' } : {}) };
  },
  personalValues(request) {
    const { patient } = request as unknown as CambioRequest;
    return patient ? [{ value: patient, shownAs: 'patient (not shown)' }] : [];
  },
}));
