import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/**
 * The console's files, all served by paybridge itself (no CDN: the console works without internet).
 * The page, its script and style sheet are in shared/console/client/; the chart library is uPlot from
 * node_modules. Read once, on first use, and served with their hash as ETag.
 */
export interface Asset {
  type: string;
  body: string;
  etag: string;
}

const TYPES: Record<string, string> = { js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8', html: 'text/html; charset=utf-8', svg: 'image/svg+xml' };

function clientFile(name: string): string {
  return fileURLToPath(new URL(`./client/${name}`, import.meta.url));
}

/** Where each public name is read from. */
function sourceOf(name: string): string | undefined {
  const require = createRequire(import.meta.url);
  switch (name) {
    case 'index.html':
    case 'app.js':
    case 'app.css':
    case 'favicon.svg':
      return clientFile(name);
    case 'uplot.js':
      return require.resolve('uplot/dist/uPlot.iife.min.js');
    case 'uplot.css':
      return require.resolve('uplot/dist/uPlot.min.css');
    default:
      return undefined;
  }
}

const cache = new Map<string, Asset>();

export function asset(name: string): Asset | undefined {
  const hit = cache.get(name);
  if (hit) return hit;
  const path = sourceOf(name);
  if (!path) return undefined;
  const body = readFileSync(path, 'utf8');
  const ext = name.slice(name.lastIndexOf('.') + 1);
  const made = { type: TYPES[ext] ?? 'application/octet-stream', body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"` };
  cache.set(name, made);
  return made;
}
