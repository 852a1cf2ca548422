/** Whether dist/ may be older than the sources (src/, tsconfig files, package.json). */
export declare function distStale(): boolean;
/** Whether the build info at `path` lists files type-checked but not emitted; true when unreadable. */
export declare function pendingEmit(path: string): boolean;
/**
 * Removes tsc's outputs under dist/ (or under `dirs`) whose source is gone.
 * @returns the removed paths.
 */
export declare function pruneDist(dirs?: readonly string[]): string[];
/** Rebuilds dist/ if it may be stale. @throws Error when tsc fails. */
export declare function ensureDist(stdio?: 'inherit' | 'pipe'): void;
