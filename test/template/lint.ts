/**
 * An offline CloudFormation linter over the packaged template, using the CDK team's database of
 * CloudFormation resource schemas (@aws-cdk/aws-service-spec): resource types, property names at
 * every depth, required properties, and Ref / Fn::GetAtt / DependsOn targets.
 *
 *   tsx test/template/lint.ts .serverless/cloudformation-template-update-stack.json
 */
import { readFileSync } from 'node:fs';
import { loadAwsServiceSpecSync } from '@aws-cdk/aws-service-spec';

type Json = Record<string, unknown>;
interface Property {
  type: PropType;
  required?: boolean;
}
type PropType = { type: string; element?: PropType; types?: PropType[]; reference?: { $ref: string } };

const PSEUDO = new Set(['AWS::AccountId', 'AWS::NotificationARNs', 'AWS::NoValue', 'AWS::Partition', 'AWS::Region', 'AWS::StackId', 'AWS::StackName', 'AWS::URLSuffix']);

function isIntrinsic(v: unknown): boolean {
  return !!v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 1 && /^(Ref|Fn::\w+|Condition)$/.test(Object.keys(v)[0] as string);
}

export function lintTemplate(template: Json): string[] {
  const db = loadAwsServiceSpecSync();
  const problems: string[] = [];
  const resources = (template.Resources ?? {}) as Record<string, { Type: string; Properties?: Json; DependsOn?: string | string[] }>;
  const parameters = new Set(Object.keys((template.Parameters ?? {}) as Json));
  const specs = new Map<string, { properties: Record<string, Property>; attributes: Record<string, unknown> }>();

  const checkObject = (path: string, value: Json, props: Record<string, Property>) => {
    for (const [name, v] of Object.entries(value)) {
      const prop = props[name];
      if (!prop) {
        problems.push(`${path}: unknown property ${name}`);
        continue;
      }
      checkValue(`${path}.${name}`, v, prop.type);
    }
    for (const [name, prop] of Object.entries(props)) if (prop.required && !(name in value)) problems.push(`${path}: missing required property ${name}`);
  };
  const checkValue = (path: string, v: unknown, type: PropType) => {
    if (v === null || v === undefined || isIntrinsic(v)) return;
    if (type.type === 'array' && Array.isArray(v) && type.element) v.forEach((e, i) => checkValue(`${path}[${i}]`, e, type.element as PropType));
    else if (type.type === 'ref' && type.reference && typeof v === 'object' && !Array.isArray(v)) {
      const def = db.get('typeDefinition', type.reference.$ref) as unknown as { properties: Record<string, Property> };
      checkObject(path, v as Json, def.properties);
    } else if (type.type === 'union' && type.types) {
      const ref = type.types.find((t) => t.type === 'ref');
      if (ref && typeof v === 'object' && !Array.isArray(v)) checkValue(path, v, ref);
    }
  };

  for (const [id, res] of Object.entries(resources)) {
    if (res.Type.startsWith('Custom::')) continue;
    const found = db.lookup('resource', 'cloudFormationType', 'equals', res.Type);
    if (found.length === 0) {
      problems.push(`${id}: unknown resource type ${res.Type}`);
      continue;
    }
    const spec = found[0] as unknown as { properties: Record<string, Property>; attributes: Record<string, unknown> };
    specs.set(id, spec);
    checkObject(`${id} (${res.Type})`, res.Properties ?? {}, spec.properties);
  }

  const walk = (where: string, node: unknown) => {
    if (Array.isArray(node)) return node.forEach((n) => walk(where, n));
    if (!node || typeof node !== 'object') return;
    for (const [k, v] of Object.entries(node as Json)) {
      if (k === 'Ref' && typeof v === 'string' && !resources[v] && !parameters.has(v) && !PSEUDO.has(v)) problems.push(`${where}: Ref to unknown ${v}`);
      if (k === 'Fn::GetAtt') {
        const [target, attr] = Array.isArray(v) ? (v as string[]) : String(v).split(/\.(.*)/);
        const spec = target ? specs.get(target) : undefined;
        if (!target || !resources[target]) problems.push(`${where}: GetAtt on unknown ${target}`);
        else if (spec && attr && !(attr in spec.attributes)) problems.push(`${where}: ${target} has no attribute ${attr}`);
      }
      walk(where, v);
    }
  };
  for (const [id, res] of Object.entries(resources)) {
    walk(id, res.Properties);
    for (const dep of [res.DependsOn ?? []].flat()) if (!resources[dep]) problems.push(`${id}: DependsOn unknown ${dep}`);
  }
  walk('Outputs', template.Outputs);
  return problems;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = process.argv[2] ?? '.serverless/cloudformation-template-update-stack.json';
  const template = JSON.parse(readFileSync(file, 'utf8')) as Json;
  const problems = lintTemplate(template);
  const count = Object.keys((template.Resources ?? {}) as Json).length;
  for (const p of problems) process.stdout.write(`  ${p}\n`);
  process.stdout.write(`template lint: ${count} resources, ${problems.length} problem${problems.length === 1 ? '' : 's'}\n`);
  process.exitCode = problems.length > 0 ? 1 : 0;
}
