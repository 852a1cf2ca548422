/**
 * The repository root, for tests that read the sources or run the scripts: the nearest folder
 * above this file that holds package.json — from test/support/ under tsx, and from
 * dist/test/support/ when the tests run compiled (dist/ has no package.json).
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
  return dir;
}

/** The repository root (where package.json is), without a trailing slash. */
export const ROOT = findRoot();
