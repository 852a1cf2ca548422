/**
 * serve's state directory (`serve --state-dir DIR`): device memory in sparse files, the rest of
 * each device and of the machine in checked `.state` files, one server per directory (a lock).
 * state-dir.ts describes the layout and what a restart restores.
 */
export { lockStateDir, type StateDirLock } from './lock.ts';
export { makeDirectories } from './make-directories.ts';
export {
  type ReplaceFileOptions,
  removeLeftTemporaries,
  replaceFile,
  syncDirectory,
} from './replace-file.ts';
export { memoryFileName, platformDigest, StateDir, type StateDirOptions } from './state-dir.ts';
export {
  decodeStateFile,
  encodeStateFile,
  readStateFile,
  STATE_FORMAT,
  STATE_MAGIC,
  StateDirError,
  writeStateFile,
} from './state-file.ts';
