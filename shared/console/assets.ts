import { createHash } from 'node:crypto';
import { assetText } from './asset-text.js';

/**
 * The console's files, all served by paybridge itself (no CDN: the console works without internet).
 * The page, its script and style sheet are in shared/console/client/; the chart library is uPlot from
 * node_modules (client/files.json lists them; shared/console/asset-text.ts reads them, and the console's
 * Lambda bundle carries them inlined). Read once, on first use, and served with their hash as ETag.
 */
export interface Asset {
  type: string;
  body: string;
  etag: string;
}

const TYPES: Record<string, string> = { js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8', html: 'text/html; charset=utf-8', svg: 'image/svg+xml' };

const cache = new Map<string, Asset>();

export function asset(name: string): Asset | undefined {
  const hit = cache.get(name);
  if (hit) return hit;
  const body = assetText(name);
  if (body === undefined) return undefined;
  const ext = name.slice(name.lastIndexOf('.') + 1);
  const made = { type: TYPES[ext] ?? 'application/octet-stream', body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"` };
  cache.set(name, made);
  return made;
}
