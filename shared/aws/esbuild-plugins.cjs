// esbuild plugins for serverless-esbuild (serverless.yml `custom.esbuild.plugins`), which require()s this file
// and calls it with the Serverless instance; `npm run coldstart` loads it the same way.
'use strict';

const { mkdirSync, readFileSync, renameSync } = require('node:fs');
const { createRequire } = require('node:module');
const { basename, dirname, join, resolve } = require('node:path');

/**
 * Source maps are built for debugging but not shipped (issue 14): a map is larger than its minified bundle,
 * and Lambda only needs it when it decodes a stack trace, which `--enable-source-maps` would do on every
 * error at the cost of loading it. esbuild writes them beside each bundle (`sourcemap: external`, so the
 * bundle names no map); this moves each one out of the build folder before serverless-esbuild zips what
 * that folder holds, into `dir` (.serverless/sourcemaps/: osls moves it with the zips to a --package folder),
 * from where a deploy can upload them apart. Bundles have unique file names
 * (functions/<name>.mjs), so their maps do too.
 */
function sourcemapsApart(dir) {
  return {
    name: 'paybridge-sourcemaps-apart',
    setup(build) {
      // The metafile names what this build wrote; serverless-esbuild writes its own copy only when custom.esbuild asks.
      build.initialOptions.metafile = true;
      const cwd = build.initialOptions.absWorkingDir ?? process.cwd();
      build.onEnd((result) => {
        // A build that writes nothing (write: false, as a test may ask) has no map to move.
        if (build.initialOptions.write === false) return;
        for (const output of Object.keys(result.metafile?.outputs ?? {})) {
          if (!output.endsWith('.map')) continue;
          mkdirSync(dir, { recursive: true });
          renameSync(resolve(cwd, output), join(dir, basename(output)));
        }
      });
    },
  };
}

/**
 * Three parts of undici the clients cannot reach are left out of every bundle (issue 23: cold start). A
 * bundle's import time is mostly V8 compiling its text, and esbuild keeps every module a `require` names,
 * even one run only inside a branch never taken. Each is replaced by a module that throws a clear error
 * if that branch is ever taken:
 * - the HTTP/2 client (`client-h2.js`, with `node:http2` at its top): client.js calls it only for a
 *   connection that negotiated h2 over ALPN, and no Agent here sets allowH2, so h2 is never offered;
 * - the fetch body machinery (`web/fetch/body.js`, which brings webidl, FormData and its parser):
 *   client-h1.js requires it only for a FormData body, and the clients send strings;
 * - the non-SIMD build of llhttp (`llhttp-wasm.js`, 72 KB of base64): client-h1.js falls back to it only
 *   when the SIMD build does not compile, which Node 22 on Lambda (arm64, x86_64) does.
 * Each throws with code PAYBRIDGE_NOT_BUNDLED (shared/core/classify.ts: proof the request was not sent,
 * for each is reached before anything is written).
 * About 140 KB of each payment function's 1 MB. test/unit/bundles.test.ts checks that they stay out, that a
 * built payment function loads no node:http2, and that the bundled client still posts.
 */
const UNDICI_LEFT_OUT = [
  { request: /^\.\/client-h2\.js$/, importer: /[\\/]undici[\\/]lib[\\/]dispatcher[\\/]client\.js$/, contents: "module.exports = function connectH2() { throw Object.assign(new Error('undici HTTP/2 is not bundled (shared/aws/esbuild-plugins.cjs): no Agent here offers h2; nothing was written'), { code: 'PAYBRIDGE_NOT_BUNDLED' }); };" },
  { request: /^\.\.\/web\/fetch\/body\.js$/, importer: /[\\/]undici[\\/]lib[\\/]dispatcher[\\/]client-h[12]\.js$/, contents: "module.exports = { extractBody() { throw Object.assign(new TypeError('undici FormData bodies are not bundled (shared/aws/esbuild-plugins.cjs): send a string or a Buffer; nothing was written'), { code: 'PAYBRIDGE_NOT_BUNDLED' }); } };" },
  { request: /^\.\.\/llhttp\/llhttp-wasm\.js$/, importer: /[\\/]undici[\\/]lib[\\/]dispatcher[\\/]client-h1\.js$/, contents: "throw Object.assign(new Error('undici\\'s non-SIMD llhttp is not bundled (shared/aws/esbuild-plugins.cjs): this runtime did not compile its WebAssembly SIMD build (or UNDICI_NO_WASM_SIMD=1); nothing was written'), { code: 'PAYBRIDGE_NOT_BUNDLED' });" },
];

function undiciUnusedPartsOut() {
  return {
    name: 'paybridge-undici-unused-parts-out',
    setup(build) {
      build.onResolve({ filter: /^\.{1,2}\/(client-h2|web\/fetch\/body|llhttp\/llhttp-wasm)\.js$/ }, (args) => {
        const i = UNDICI_LEFT_OUT.findIndex((u) => u.request.test(args.path) && u.importer.test(args.importer));
        return i < 0 ? undefined : { path: `undici-left-out-${i}`, namespace: 'paybridge-undici-left-out' };
      });
      build.onLoad({ filter: /.*/, namespace: 'paybridge-undici-left-out' }, (args) => ({
        contents: `'use strict';\n${UNDICI_LEFT_OUT[Number(args.path.slice('undici-left-out-'.length))].contents}\n`,
        loader: 'js',
      }));
    },
  };
}

/**
 * The operator console's files (page, script, styles, uPlot) inside its Lambda bundle (issue 22): a zip holds
 * the handler alone, so shared/console/asset-text.ts, which reads them from disk under npm start, is replaced
 * in the bundle by a module holding their text, read here from the same list (shared/console/client/files.json).
 * Only the console imports that module: every other bundle is unchanged.
 */
function consoleAssetsInlined() {
  return {
    name: 'paybridge-console-assets-inlined',
    setup(build) {
      build.onLoad({ filter: /[\\/]shared[\\/]console[\\/]asset-text\.ts$/ }, (args) => {
        const client = join(dirname(args.path), 'client');
        const list = JSON.parse(readFileSync(join(client, 'files.json'), 'utf8'));
        const fromPackage = createRequire(args.path);
        const paths = Object.values(list).map((source) => (source.startsWith('./') ? join(client, source.slice(2)) : fromPackage.resolve(source)));
        const text = Object.fromEntries(Object.keys(list).map((name, i) => [name, readFileSync(paths[i], 'utf8')]));
        return {
          contents: `const TEXT = ${JSON.stringify(text)};\nexport function assetText(name) { return Object.hasOwn(TEXT, name) ? TEXT[name] : undefined; }\n`,
          loader: 'js',
          watchFiles: [join(client, 'files.json'), ...paths],
        };
      });
    },
  };
}

module.exports = (serverless) => [sourcemapsApart(join(serverless?.serviceDir ?? process.cwd(), '.serverless', 'sourcemaps')), undiciUnusedPartsOut(), consoleAssetsInlined()];
module.exports.sourcemapsApart = sourcemapsApart;
module.exports.undiciUnusedPartsOut = undiciUnusedPartsOut;
module.exports.consoleAssetsInlined = consoleAssetsInlined;
