#!/usr/bin/env node
// `npx paybridge`: the TypeScript CLI, from a bundle kept in step with the sources, or through tsx
// (a dependency, as `npm start` runs): see launch.mjs.
import { loadMain } from './launch.mjs';

const main = await loadMain();
process.exitCode = await main(process.argv.slice(2));
