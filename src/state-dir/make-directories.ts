/**
 * `mkdir -p` that always ends: Node 20's `mkdirSync(path, { recursive: true })` loops for ever
 * when the kernel answers ENOENT for a directory whose parent exists (under /proc, say: `serve
 * --state-dir /proc/x` spun at ~5,000 mkdir calls a second, saying nothing).
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Creates `path` and its missing parents with `mode` (the existing ones are left as they are).
 * @throws NodeJS.ErrnoException from the first mkdir that fails for another reason than EEXIST
 *   (ENOENT from a file system that refuses the name, EACCES, ENOTDIR...).
 */
export function makeDirectories(path: string, mode: number): void {
  const parent = dirname(path);
  try {
    mkdirSync(path, { mode });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    if (code !== 'ENOENT' || parent === path) throw err;
    makeDirectories(parent, mode);
    mkdirSync(path, { mode });
  }
}
