#!/usr/bin/env node
// `npx paybridge`: runs the TypeScript CLI through tsx (a dependency), like `npm start` does.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./run.ts');
process.exitCode = await main(process.argv.slice(2));
