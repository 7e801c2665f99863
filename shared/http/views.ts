import * as z from 'zod';
import { STATUSES } from '../core/types.js';

/** What the routes answer, as schemas: the OpenAPI document is generated from these (issue 6). */
export const historyEntrySchema = z.object({ at: z.string(), event: z.string(), detail: z.string().optional() });

export const paymentViewSchema = z
  .object({
    system: z.string(),
    key: z.string().describe('the idempotency key as the route received it'),
    status: z.enum(STATUSES),
    attempts: z.number().int(),
    createdAt: z.string(),
    updatedAt: z.string(),
    nextAttemptAt: z.string().optional().describe('while retrying or reconciling'),
    result: z.object({ httpStatus: z.number().int(), body: z.unknown(), note: z.string().optional() }).optional(),
    error: z.object({ kind: z.string(), message: z.string(), httpStatus: z.number().int().optional(), code: z.string().optional() }).optional(),
    request: z.record(z.string(), z.unknown()).describe('the request as sent, without personal data beyond ids'),
    checkpoints: z.record(z.string(), z.unknown()).describe('per-step progress (BRP order, rows, receipt; Kontantanalys remote id)'),
    history: z.array(historyEntrySchema),
    statusUrl: z.string(),
    remoteId: z.number().int().nullable().optional().describe('Kontantanalys only'),
    unchanged: z.boolean().optional().describe('Kontantanalys only: the body equalled the last one; nothing was sent'),
  })
  .describe('A payment record');

export const problemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    instance: z.string().optional(),
    errors: z.array(z.object({ pointer: z.string(), detail: z.string() })).optional(),
    downstream: z.object({ httpStatus: z.number().int().optional(), code: z.string().optional(), message: z.string().optional() }).optional(),
    statusUrl: z.string().optional(),
  })
  .describe('RFC 9457 problem details');

/** `GET /v1/payments/kontantanalys/run:latest` before the scheduled run's first run (shared/http/payments.ts, noRunYet). */
export const noRunYetSchema = z
  .object({
    system: z.literal('kontantanalys'),
    key: z.literal('run:latest'),
    status: z.literal('no run yet'),
    detail: z.string().describe('when the run is scheduled'),
    history: z.array(historyEntrySchema).max(0),
    statusUrl: z.string(),
  })
  .describe('The Kontantanalys run summary before the first scheduled run');
