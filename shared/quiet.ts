/**
 * The AWS SDK warns once per process that releases after January 2027 will need Node 22; the pinned SDK
 * versions support Node 20 (README, "Node versions"), so it says nothing about this program. The SDK's
 * own switch is AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true (vitest.config.ts sets it); `npm
 * start` and the CLI drop that one warning here instead, so they need nothing set in the shell.
 */
export function silenceSdkNodeVersionWarning(): void {
  const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const text = typeof warning === 'string' ? warning : warning.message;
    if (text.startsWith('NodeVersionSupportWarning')) return;
    emit(warning, ...rest);
  }) as typeof process.emitWarning;
}
