'use strict';
// osls loads `${file(...)}` sources with require(), which cannot read TypeScript; tsx (already a
// runtime dependency, for npm start) compiles shared/aws/osls.ts on the way, so the stack stays typed
// and unit-tested.
module.exports = require('tsx/cjs/api').require('./osls.ts', __filename).variables;
