/**
 * A PCI address a user types (`inspect --dt ADDRESS`, `serve --device ADDRESS`): DDDD:BB:DD.F
 * or BB:DD.F (domain 0), hex digits, device 00-1f, function 0-7, as Linux names a function
 * (pci_name()). A malformed one is a usage error naming it, never taken for a file name.
 */
import { CliError } from './cli-error.ts';

const ADDRESS = /^(?:([0-9a-f]{4}):)?([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/i;

/**
 * Whether `text`, which names no file, is meant as a PCI address: a ':' in it, no '/', and no
 * tree file's extension.
 */
export function looksLikePciAddress(text: string): boolean {
  return /^[^/]*:[^/]*$/.test(text) && !/\.dt[bs]$/i.test(text);
}

/**
 * `text` as the canonical lower-case DDDD:BB:DD.F; `orFile`: it could have named a file too.
 * @throws CliError USAGE for `command` naming `text` and the shape, when malformed.
 */
export function parsePciAddress(command: string, text: string, orFile = false): string {
  const m = ADDRESS.exec(text);
  if (!m || Number.parseInt(m[3] as string, 16) > 0x1f)
    throw new CliError(
      command,
      'USAGE',
      `malformed PCI address '${text}'${orFile ? ' (and no such file)' : ''}: expected DDDD:BB:DD.F (hex; device 00-1f, function 0-7), e.g. 0002:01:00.0`,
    );
  return `${(m[1] ?? '0000').toLowerCase()}:${(m[2] as string).toLowerCase()}:${(m[3] as string).toLowerCase()}.${m[4]}`;
}
