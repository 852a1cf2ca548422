/**
 * The client's side of server-initiated DMA (vfio-user.rst "VFIO_USER_DMA_READ",
 * "VFIO_USER_DMA_WRITE"): the memory it announced with DMA_MAP, kept so that it can answer a
 * server's DMA_READ/DMA_WRITE from it. A region given by fd is mapped here too (MAP_SHARED);
 * one given as bytes is served from them; an address no backed region holds gets EINVAL.
 */
import { closeFd, dupFd, SharedMapping } from '../../native/index.ts';
import { hex } from '../../text/index.ts';
import { VfioError } from '../../vfio/index.ts';

/** What backs a DMA region on the client side. */
export type DmaBacking = { fd: number; offset?: bigint } | { bytes: Uint8Array } | null;

interface DmaRegion {
  address: bigint;
  size: bigint;
  writable: boolean;
  mapping: SharedMapping | null;
  bytes: Uint8Array | null;
  fd: number | null;
}

/**
 * The DMA regions a client has mapped (address, size in bytes, writable, backing fd or bytes),
 * which answer the server's DMA_READ/DMA_WRITE.
 */
export class ClientDmaRegions {
  #regions: DmaRegion[] = [];

  /** Remembers a region (duplicating and mapping its fd, if any). */
  add(address: bigint, size: bigint, writable: boolean, backing: DmaBacking): void {
    const region: DmaRegion = { address, size, writable, mapping: null, bytes: null, fd: null };
    if (backing !== null && 'fd' in backing) {
      region.fd = dupFd(backing.fd);
      region.mapping = SharedMapping.map(
        region.fd,
        backing.offset ?? 0n,
        size,
        writable ? 'rw' : 'r',
      );
    } else if (backing !== null) {
      region.bytes = backing.bytes;
    }
    this.#regions.push(region);
  }

  /** Forgets regions exactly matching [address, address+size), or all of them. */
  remove(address: bigint, size: bigint, all = false): void {
    const keep: DmaRegion[] = [];
    for (const r of this.#regions) {
      if (all || (r.address === address && r.size === size)) release(r);
      else keep.push(r);
    }
    this.#regions = keep;
  }

  /** @throws VfioError EINVAL when no region (with backing) holds the whole range. */
  read(address: bigint, count: number): Uint8Array {
    const { region, at } = this.#find(address, count);
    if (region.mapping) return region.mapping.read(at, count);
    return region.bytes!.slice(Number(at), Number(at) + count);
  }

  /** @throws VfioError EINVAL as `read`, EPERM for a read-only region. */
  write(address: bigint, data: Uint8Array): void {
    const { region, at } = this.#find(address, data.length);
    if (!region.writable)
      throw new VfioError('EPERM', `DMA region at ${hex(region.address)} is read-only`);
    if (region.mapping) region.mapping.write(at, data);
    else region.bytes!.set(data, Number(at));
  }

  #find(address: bigint, count: number): { region: DmaRegion; at: bigint } {
    const end = address + BigInt(count);
    for (const r of this.#regions) {
      if (address >= r.address && end <= r.address + r.size && (r.mapping || r.bytes)) {
        if (r.bytes && end - r.address > BigInt(r.bytes.length)) break;
        return { region: r, at: address - r.address };
      }
    }
    throw new VfioError('EINVAL', `no client memory for DMA at ${hex(address)}+${count}`);
  }

  /** Drops every region: unmaps its mapping and closes its fd (the connection closed). */
  clear(): void {
    for (const r of this.#regions) release(r);
    this.#regions = [];
  }
}

function release(r: DmaRegion): void {
  r.mapping?.unmap();
  if (r.fd !== null) closeFd(r.fd);
}
