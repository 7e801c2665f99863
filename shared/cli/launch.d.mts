/** Types of launch.mjs (plain JavaScript: it runs before anything can compile TypeScript). */
export declare const ROOT: string;
export declare function freshBundle(cacheDir: string, root?: string): string | undefined;
export declare function buildBundle(cacheDir: string, root?: string): Promise<string>;
export declare function loadMain(opts?: { cacheDir?: string; bundle?: boolean }): Promise<(argv: string[]) => Promise<number>>;
