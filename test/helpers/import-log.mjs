// `node --import ./test/helpers/import-log.mjs ...`: appends every module URL the program resolves
// through ESM to the file named by PB_IMPORT_LOG, so a test can say what a command loaded.
import { register } from 'node:module';

const hook = `
import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  if (process.env.PB_IMPORT_LOG) appendFileSync(process.env.PB_IMPORT_LOG, resolved.url + '\\n');
  return resolved;
}`;
register(`data:text/javascript,${encodeURIComponent(hook)}`);
