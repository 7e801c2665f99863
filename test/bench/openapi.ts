/** `npm run openapi`: writes the generated OpenAPI document to openapi.json (checked in; a test compares). */
import { writeFileSync } from 'node:fs';
import { buildOpenApi } from '../../shared/http/openapi.js';

writeFileSync(new URL('../../shared/http/openapi.json', import.meta.url), `${JSON.stringify(buildOpenApi(), null, 2)}\n`);
process.stdout.write('wrote shared/http/openapi.json\n');
