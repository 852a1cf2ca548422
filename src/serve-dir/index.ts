/**
 * serve's socket directory as other processes read it: devices.json (checked where it is read)
 * and the device sockets' names. Above machine and vfio-user, below the commands.
 */
export {
  DEVICES_LIST_MAX_BYTES,
  DEVICES_LIST_MAX_ENTRIES,
  type DevicesListEntry,
  parseDevicesList,
  readDevicesList,
} from './devices-list.ts';
export { deviceNameForSocket, socketsInDir } from './socket-names.ts';
