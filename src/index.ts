/**
 * The package's public API, what `import … from 'vfio-nvlink2'` gives (package.json `exports`):
 * - the vfio-user client a VMM or a test drives a served device with (`VfioUserClient`,
 *   `describeRemote`), its migration v2 calls (`setMigrationState`, `readMigrationData`,
 *   `writeMigrationData`, `startDmaLogging`..., `migrateDevice` as `migrate` drives two servers,
 *   `MigState`), and the server (`VfioUserServer`, `PartitionRegistry`);
 * - the device model: the emulated POWER9 host built from a device tree (`createMachine`), its
 *   vfio-pci devices (`VfioPciDevice`: region info, region access, IRQs) and their description
 *   as `inspect` prints it (`describeDevice`, `describeAsText`, `decodePciCapabilities`);
 * - the flattened device tree: parse and write blobs (`parseFdt`, `serializeFdt`), DTS text
 *   (`toDts`), the tree (`Fdt`, `FdtNode`), and the Witherspoon and Grace generators;
 * - the errors every part throws (`CodedError` and its kinds) and serve's devices.json reader.
 * The entry sits above every layer of src/ and re-exports their index.ts; it adds no behaviour.
 */

export { CodedError, Errno, type ErrnoName, type ErrorCode, errnoName } from './errors/index.ts';
export {
  cells,
  decodeFdtgetValue,
  diffTrees,
  Fdt,
  FdtError,
  FdtNode,
  type FdtProperty,
  FdtPropertyError,
  fdtgetText,
  nodeToDts,
  nodeToJson,
  parseFdt,
  parseFdtgetType,
  readAllU32,
  readString,
  readStringList,
  readU32,
  readU64,
  serializeFdt,
  toDts,
} from './fdt/index.ts';
export {
  createMachine,
  LpidAllocator,
  Machine,
  type MachineOptions,
  PartitionRegistry,
} from './machine/index.ts';
export { MigrationFlag, MigState, migStateName } from './migration/index.ts';
export { closeFd } from './native/index.ts';
export {
  buildHost,
  defaultPlatformTree,
  type GraceOptions,
  generateGrace,
  generateWitherspoon,
  type Host,
  HostError,
  loadPlatformTree,
  type PciFunction,
  type PciRole,
  PlatformTreeError,
  type WitherspoonOptions,
} from './platform/index.ts';
export {
  type DevicesListEntry,
  readDevicesList,
  type ServedDevice,
  servedDevices,
} from './serve-dir/index.ts';
export {
  type DeviceDescription,
  type DeviceSnapshot,
  decodePciCapabilities,
  describeAsText,
  describeDevice,
  describeSnapshot,
  IrqIndex,
  RegionFlag,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VfioError,
  VfioPciDevice,
} from './vfio/index.ts';
export {
  type ConnectOptions,
  DeviceSocketError,
  describeRemote,
  dmaLoggingReport,
  MappedRegion,
  type MigrateOptions,
  type MigrateReport,
  migrateDevice,
  migrationDataSize,
  migrationFlags,
  migrationState,
  type RegionInfoResult,
  readMigrationData,
  setMigrationState,
  startDmaLogging,
  stopDmaLogging,
  VfioUserClient,
  VfioUserServer,
  type VfioUserServerOptions,
  writeMigrationData,
} from './vfio-user/index.ts';
