/**
 * The device tree a command is given (`dt show FILE`, `dt doctor FILE`, `serve --dt FILE`,
 * `inspect --dt FILE`): the one way commands load a tree (platform/default-platform.ts), with
 * its errors as one CLI line. Its own module so that `dt` and `dt doctor` both use it without
 * importing each other.
 */
import { type Fdt, FdtError } from '../fdt/index.ts';
import { type Host, loadPlatformTree, PlatformTreeError } from '../platform/index.ts';
import { CliError, cliErrorOf } from './cli-error.ts';

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

/**
 * @throws CliError PLATFORM for `command` when `host` has no GPU or NVLink bridge (no PCI host
 * bridge at all, say a root and a memory node): there is nothing to serve or inspect.
 */
export function requireServable(command: string, host: Host, source: string): void {
  if (host.functions.some((f) => f.role === 'gpu' || f.role === 'bridge')) return;
  const why =
    host.phbs.length === 0
      ? 'no PCI host bridge (no node of device_type "pciex" or "pci")'
      : `no GPU or NVLink bridge among its ${host.functions.length} PCI functions`;
  throw new CliError(command, 'PLATFORM', `${source}: ${why}: nothing to serve`);
}
