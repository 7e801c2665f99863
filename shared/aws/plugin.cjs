'use strict';
// A local osls plugin (serverless.yml `plugins`); see StagePlugin in shared/aws/osls.ts. Loaded
// through tsx for the reason given in shared/aws/serverless.cjs.
module.exports = require('tsx/cjs/api').require('./osls.ts', __filename).StagePlugin;
