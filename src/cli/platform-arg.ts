/**
 * The device tree a command is given (`dt show FILE`, `dt doctor FILE`, `serve --dt FILE`,
 * `inspect --dt FILE`): the one way commands load a tree (platform/default-platform.ts), with
 * its errors as one CLI line. Its own module so that `dt` and `dt doctor` both use it without
 * importing each other.
 */
import { type Fdt, FdtError } from '../fdt/index.ts';
import { loadPlatformTree, PlatformTreeError } from '../platform/index.ts';
import { cliErrorOf } from './cli-error.ts';

/**
 * Loads the tree a command was given (a DTB, or DTS compiled by dtc), or the built-in default
 * platform when `file` is undefined.
 * @throws CliError DT_PARSE for `command`, naming the file and why, when it cannot be read,
 *   compiled or parsed.
 */
export function readPlatformArg(command: string, file?: string): Fdt {
  try {
    return loadPlatformTree(file);
  } catch (err) {
    if (err instanceof PlatformTreeError || err instanceof FdtError) throw cliErrorOf(command, err);
    throw err;
  }
}
