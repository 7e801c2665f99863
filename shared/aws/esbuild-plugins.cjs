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
 * undici's HTTP/2 client loads on first use instead of at import (issue 23). undici's client.js requires
 * client-h2.js at its top, and that module loads `node:http2` at its own top: about 18 ms of a cold start
 * for a protocol the clients never speak (no Agent here sets allowH2; client.js calls connectH2 only for a
 * connection that negotiated h2). This hands client.js a function that requires the real module the first
 * time it is called: esbuild bundles CommonJS modules as closures run on first require, so http2 is loaded
 * then and only then. Nothing else changes; test/unit/bundles.test.ts imports a built payment function
 * and checks that http2 stayed unloaded.
 */
function undiciHttp2OnFirstUse() {
  return {
    name: 'paybridge-undici-http2-on-first-use',
    setup(build) {
      build.onResolve({ filter: /^\.\/client-h2\.js$/ }, (args) => {
        if (!/[\\/]undici[\\/]lib[\\/]dispatcher[\\/]client\.js$/.test(args.importer)) return undefined;
        return { path: join(args.resolveDir, 'client-h2.js'), namespace: 'paybridge-undici-h2', pluginData: { resolveDir: args.resolveDir } };
      });
      build.onLoad({ filter: /.*/, namespace: 'paybridge-undici-h2' }, (args) => ({
        contents: [
          "'use strict';",
          'let connectH2;',
          'module.exports = function connectH2OnFirstUse(client, socket) {',
          `  connectH2 ??= require(${JSON.stringify(args.path)});`,
          '  return connectH2(client, socket);',
          '};',
        ].join('\n'),
        loader: 'js',
        resolveDir: args.pluginData.resolveDir,
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

module.exports = (serverless) => [sourcemapsApart(join(serverless?.serviceDir ?? process.cwd(), '.serverless', 'sourcemaps')), undiciHttp2OnFirstUse(), consoleAssetsInlined()];
module.exports.sourcemapsApart = sourcemapsApart;
module.exports.undiciHttp2OnFirstUse = undiciHttp2OnFirstUse;
module.exports.consoleAssetsInlined = consoleAssetsInlined;
