/**
 * A zod error message that tells "missing" apart from "wrong". Shared by every system's schema, and kept
 * apart from them so that one system's bundle does not take another's schemas along with it.
 */
export const orRequired = (message: string) => (issue: { input?: unknown }) => (issue.input === undefined ? 'is required' : message);
