/**
 * This package's version, from its package.json: beside src/ under tsx, one level further up
 * from dist/src/cli/ (tsc's files and the bundled CLI's chunks alike). One reader for
 * `--version` and for SARIF's driver.version.
 */
import { readFileSync } from 'node:fs';
import { parseJson } from '../text/index.ts';

/** The version of vfio-nvlink2's package.json above this file; undefined when none is found. */
export function packageVersion(): string | undefined {
  for (const up of ['../../package.json', '../../../package.json']) {
    let pkg: unknown;
    try {
      pkg = parseJson(readFileSync(new URL(up, import.meta.url), 'utf8'));
    } catch {
      continue; // not there (or not JSON): not ours
    }
    if (typeof pkg !== 'object' || pkg === null || !('name' in pkg) || !('version' in pkg))
      continue;
    if (pkg.name === 'vfio-nvlink2' && typeof pkg.version === 'string') return pkg.version;
  }
  return undefined;
}
