/**
 * Witherspoon NVLink wiring: which NPU links (bricks) reach which GPU, per socket, for the
 * 4-GPU (Redbud) and 6-GPU (Sequoia) planars, and the GPU-side `ibm,nvlink-peers` tables.
 * Source: skiboot platforms/astbmc/witherspoon.c (npu2_phb_nvlink_dt, witherspoon_npu2 slot
 * tables), Witherspoon design workbook figures 16 and 17 as cited there.
 */

export type GpuCount = 4 | 6;

/** A GPU's six links: another GPU on the same socket (by index on the socket) or an NPU brick. */
export type PeerLink =
  | { readonly kind: 'gpu'; readonly gpu: number }
  | { readonly kind: 'npu'; readonly brick: number };

/**
 * The NVLink wiring of one socket: GPUs, links per GPU, which NPU bricks reach which GPU, and each
 * GPU's peers.
 */
export interface SocketTopology {
  /** GPUs per socket. */
  readonly gpusPerSocket: number;
  /** NPU links (bricks) per GPU. */
  readonly linksPerGpu: number;
  /** GPU index on the socket of each of the six NPU bricks (`ibm,npu-group-id`). */
  readonly brickGroup: readonly number[];
  /** The GPU's link 0..5 peers (witherspoon.c npu2_phb_nvlink_dt). */
  readonly peers: readonly (readonly PeerLink[])[];
}

const g = (gpu: number): PeerLink => ({ kind: 'gpu', gpu });
const n = (brick: number): PeerLink => ({ kind: 'npu', brick });

/** witherspoon.c WITHERSPOON_TYPE_REDBUD. */
const REDBUD: SocketTopology = {
  gpusPerSocket: 2,
  linksPerGpu: 3,
  brickGroup: [0, 0, 0, 1, 1, 1],
  peers: [
    [g(1), n(0), g(1), n(1), g(1), n(2)],
    [g(0), n(3), g(0), n(4), g(0), n(5)],
  ],
};

/** witherspoon.c WITHERSPOON_TYPE_SEQUOIA. */
const SEQUOIA: SocketTopology = {
  gpusPerSocket: 3,
  linksPerGpu: 2,
  brickGroup: [0, 0, 1, 1, 2, 2],
  peers: [
    [g(1), n(0), g(2), g(2), g(1), n(1)],
    [g(0), n(2), g(2), g(2), g(0), n(3)],
    [g(1), g(0), g(1), n(4), g(0), n(5)],
  ],
};

/** The wiring of a socket of a 4-GPU (Redbud) or 6-GPU (Sequoia) Witherspoon. */
export function socketTopology(gpus: GpuCount): SocketTopology {
  return gpus === 4 ? REDBUD : SEQUOIA;
}

/** The two sockets' chip ids on a Witherspoon. */
export const WITHERSPOON_CHIPS = [0, 8] as const;

/**
 * The slot label of GPU `group` on socket `socket` (0 or 1): GPU0.. on chip 0, GPU3.. on chip 8
 * (the 4-GPU machine has GPU0, GPU1, GPU3, GPU4).
 */
export function slotLabel(socket: number, group: number): string {
  return `GPU${socket * 3 + group}`;
}
