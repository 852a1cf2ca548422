/**
 * What `serve` publishes in its socket directory for other processes: devices.json, one
 * entry type for its writer (cli/serve) and its readers (inspect, guest, bench, fuzz, tests),
 * validated where it is read, and the device sockets' names. Sits above machine and
 * vfio-user, below cli, guest and bench.
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
export { deviceNameForSocket, socketsInDir } from './socket-names.ts';
/** Most bytes of state.json read: serve's lists ~200 bytes per GPU and per partition. */
export const STATE_JSON_MAX_BYTES = 4 * 1024 * 1024;
