/**
 * What `serve` publishes in its socket directory for other processes: devices.json and
 * state.json, one type each for its writer (cli/serve) and its readers (inspect, guest, bench,
 * fuzz, topology, tests), validated where it is read, and the device sockets' names. Sits
 * above machine and vfio-user, below cli, guest and bench.
 */

export { readUntrustedFile } from './bounded-file.ts';
export {
  DEVICES_LIST_MAX_BYTES,
  DEVICES_LIST_MAX_ENTRIES,
  type DevicesListEntry,
  devicesListEntry,
  parseDevicesList,
  readDevicesList,
  type ServedDevice,
  servedDevices,
} from './devices-list.ts';
export {
  parseServeState,
  readServeState,
  type ServeState,
  type ServeStateAtsd,
  type ServeStateMemory,
  type ServeStateNpu,
  STATE_JSON_MAX_BYTES,
} from './serve-state.ts';
export { deviceNameForSocket, socketsInDir } from './socket-names.ts';
