import type { APIGatewayProxyResult } from 'aws-lambda';
import type * as z from 'zod';

/** RFC 9457 problem types; each slug is documented in the README's "Errors" section. */
export const PROBLEM_TYPE_BASE = 'https://paybridge.dev/problems/';

export interface FieldError {
  /** JSON Pointer into the request body (RFC 6901, as a URI fragment), or a header name. */
  pointer: string;
  detail: string;
}

/** An error meant for the caller: its status, type and detail go out as `application/problem+json`. */
export class ProblemError extends Error {
  override readonly name = 'ProblemError';
  constructor(
    readonly status: number,
    readonly slug: string,
    readonly title: string,
    readonly detail: string,
    readonly errors?: FieldError[],
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
  }
}

export function problemResponse(problem: ProblemError, instance?: string): APIGatewayProxyResult {
  const body = {
    type: `${PROBLEM_TYPE_BASE}${problem.slug}`,
    title: problem.title,
    status: problem.status,
    detail: problem.detail,
    ...(instance ? { instance } : {}),
    ...(problem.errors && problem.errors.length > 0 ? { errors: problem.errors } : {}),
    ...problem.extra,
  };
  return {
    statusCode: problem.status,
    headers: { 'content-type': 'application/problem+json', ...problem.headers },
    body: JSON.stringify(body),
  };
}

function pointerOf(path: readonly PropertyKey[]): string {
  return `#/${path.map((p) => String(p).replace(/~/g, '~0').replace(/\//g, '~1')).join('/')}`;
}

/** Field-level messages from a zod error: one per issue, each naming where it is. */
export function fieldErrors(error: z.ZodError, pointerPrefix: readonly PropertyKey[] = []): FieldError[] {
  const out: FieldError[] = [];
  for (const issue of error.issues) {
    const path = [...pointerPrefix, ...issue.path];
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) out.push({ pointer: pointerOf([...path, key]), detail: 'is not a field of this request' });
      continue;
    }
    const missing = issue.code === 'invalid_type' && /received undefined/.test(issue.message);
    out.push({ pointer: pointerOf(path), detail: missing ? 'is required' : issue.message });
  }
  return out;
}

export function validationProblem(errors: FieldError[], what = 'request'): ProblemError {
  const first = errors[0];
  const summary = first ? `${first.pointer.replace(/^#\//, '') || 'body'} ${first.detail}` : 'invalid';
  return new ProblemError(
    400,
    'validation-failed',
    'The request is not valid',
    `The ${what} has ${errors.length} invalid field${errors.length === 1 ? '' : 's'}: ${summary}${errors.length > 1 ? ', …' : ''}. Nothing was recorded or sent.`,
    errors,
  );
}
