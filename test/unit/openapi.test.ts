import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildOpenApi } from '../../shared/http/openapi.js';
import { HTTP_ROUTES } from '../../shared/local/routes.js';

const checkedIn = JSON.parse(readFileSync(new URL('../../shared/http/openapi.json', import.meta.url), 'utf8'));

function refs(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) node.forEach((n) => refs(n, out));
  else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (k === '$ref' && typeof v === 'string') out.push(v);
      else refs(v, out);
    }
  }
  return out;
}

describe('the OpenAPI document', () => {
  it('is what the zod schemas generate: run `npm run openapi` after changing a schema', () => {
    expect(buildOpenApi()).toEqual(checkedIn);
  });

  it('describes every route, and every $ref resolves', () => {
    const doc = buildOpenApi() as { openapi: string; paths: Record<string, Record<string, unknown>>; components: { schemas: Record<string, unknown> } };
    expect(doc.openapi).toBe('3.1.0');
    for (const r of HTTP_ROUTES) expect(doc.paths[r.path]?.[r.method.toLowerCase()], `${r.method} ${r.path}`).toBeDefined();
    for (const ref of refs(doc)) expect(doc.components.schemas[ref.replace('#/components/schemas/', '')], ref).toBeDefined();
  });

  it('documents the webhook-id binding and tenant scoping (issue 12)', () => {
    const doc = buildOpenApi() as { paths: Record<string, Record<string, any>>; components: { securitySchemes: Record<string, any> } };
    for (const [path, method] of [['/v1/nif/membership/payments', 'post'], ['/v1/cambio/payment-notices', 'post'], ['/v1/kontantanalys/{resource}/{externalId}', 'put']] as const) {
      expect(doc.paths[path]?.[method].responses['409'].description, path).toMatch(/webhook-replayed.*ClubId, Idempotency-Key, patient header or body/);
    }
    expect(doc.components.securitySchemes.webhookSignature.description).toMatch(/remembered for an hour/);
    expect(doc.paths['/v1/payments/{system}/{key}']?.get.responses['404'].description).toMatch(/another caller/);
  });

  it('carries the documents\' rules, not a plausible subset', () => {
    const s = buildOpenApi().components as { schemas: Record<string, any> };
    expect(s.schemas.CambioPaymentNotice.properties.paymentType.enum).toEqual(['CASH', 'CARD']);
    expect(s.schemas.NifMembershipPayment.properties.comment.maxLength).toBe(200);
    expect(s.schemas.NifMembershipPayment.properties.paymentCategory.maxLength).toBe(127);
    expect(s.schemas.Kontantanalys_templates.properties.openHoursPerWeek.maximum).toBe(168);
    expect(s.schemas.Kontantanalys_templates.properties.closedWeeksPerYear.maximum).toBe(53);
    expect(s.schemas.BrpSale.properties.payment.properties.amount.type).toBe('integer');
  });
});
