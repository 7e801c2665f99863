// esbuild plugins for serverless-esbuild (serverless.yml `custom.esbuild.plugins`), which require()s this file
// and calls it with the Serverless instance; `npm run coldstart` loads it the same way.
'use strict';

const { mkdirSync, renameSync } = require('node:fs');
const { basename, join, resolve } = require('node:path');

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

module.exports = (serverless) => [sourcemapsApart(join(serverless?.serviceDir ?? process.cwd(), '.serverless', 'sourcemaps'))];
module.exports.sourcemapsApart = sourcemapsApart;
