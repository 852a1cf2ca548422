/**
 * The flattened-device-tree layer's public API: blob parsing and writing (Devicetree
 * Specification v0.3, chapter 5; dtc's libfdt), DTS text, the tree model, the kernel-semantics
 * property readers and the errors. Other layers import from here only.
 */

export { diffTrees, formatDiff } from './diff.ts';
export { DTS_MAX_INDENT, formatPropertyValue, nodeToDts, toDts } from './dts.ts';
export { FdtError, type FdtErrorCode, FdtPropertyError } from './errors.ts';
export {
  decodeFdtgetValue,
  FDTGET_GUESS,
  type FdtgetType,
  type FdtgetValue,
  fdtgetJson,
  fdtgetText,
  isPrintableStrings,
  nodeToJson,
  parseFdtgetType,
  readFdtgetValue,
} from './fdtget.ts';
export { FDT_MAGIC, FDT_WRITE_VERSION } from './format.ts';
export { parseFdt } from './parse.ts';
export { followPhandleChain, type PhandleChainOptions } from './phandle-chain.ts';
export * from './props.ts';
export { isCompatible } from './props.ts';
export { serializeFdt } from './serialize.ts';
export {
  cells,
  Fdt,
  FdtNode,
  type FdtProperty,
  type MemoryReservation,
  requireNode,
} from './tree.ts';
export { FDT_MAX_DEPTH, type UnflattenedTree, unflattenLikeLinux } from './unflatten.ts';
