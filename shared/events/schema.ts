import * as z from 'zod';
import { ENDPOINT_EVENT_TYPES, EVENT_TYPES } from './model.js';

/** The bodies of the event routes (shared/events/api.ts); the OpenAPI document is generated from them. */

const ALL_TYPES = [...EVENT_TYPES, ...ENDPOINT_EVENT_TYPES] as const;
const eventTypes = z.array(z.enum(ALL_TYPES)).max(ALL_TYPES.length).describe('The event types to send; empty or absent: every type');

export const endpointBody = z.strictObject({
  url: z.string().min(1).max(2000).describe('https, to a public address (resolved and checked at registration and at every delivery); http to loopback on the local stack only'),
  eventTypes: eventTypes.optional(),
  description: z.string().max(200).optional(),
});
export const patchBody = z.strictObject({
  url: z.string().min(1).max(2000).optional(),
  eventTypes: eventTypes.optional(),
  description: z.string().max(200).optional(),
  enabled: z.literal(true, { message: 'can only be true: re-enables a disabled endpoint (delete an endpoint to stop it)' }).optional(),
});
export const recoverBody = z.strictObject({ since: z.iso.datetime({ offset: true }).describe('Every event since this time is delivered again, paced') });
