/**
 * The QEMU options a Grace GPU served by nvgrace-gpu needs (reference nvgrace.md "How QEMU
 * consumes it"): each GPU behind its own `pcie-root-port` whose `pref64-reserve` holds its
 * 64-bit prefetchable BARs (usemem at BAR4, resmem or Blackwell's BAR1 at BAR2), attached by
 * `vfio-user-pci`, and — QEMU 9.0+, hw/acpi/acpi_generic_initiator.c — memory-less NUMA nodes,
 * each tied to the GPU by an `acpi-generic-initiator` object (SRAT Generic Initiator
 * Affinity), into which the guest's GPU driver onlines the device memory: 8 per GPU, as
 * NVIDIA's guides configure them. Node 0 holds the guest RAM (a shared memfd, so the server
 * can reach it for DMA). Pure: no I/O here.
 */

/** A Grace GPU as read over the wire: where its socket is and its BAR sizes. */
export interface GraceGpuFacts {
  readonly address: string;
  readonly socket: string;
  readonly model: string;
  /** Region sizes of BAR0..BAR5 (0 for none). */
  readonly barSizes: readonly bigint[];
}

/** What graceQemuPlan needs besides the GPUs: guest RAM and the memory-less NUMA nodes per GPU. */
export interface GraceQemuOptions {
  /** Guest RAM (bytes) on node 0. */
  readonly ramBytes: bigint;
  /** Memory-less nodes per GPU (default 8). */
  readonly nodesPerGpu?: number;
}

/** One GPU's part of the plan: its `pcie-root-port` id, `vfio-user-pci` device id, NUMA node ids and QEMU arguments. */
export interface GraceGpuPlan {
  readonly address: string;
  readonly model: string;
  readonly rootPort: string;
  readonly device: string;
  /** pref64-reserve of its root port: the sum of BAR2 and BAR4. */
  readonly pref64Reserve: bigint;
  readonly nodes: readonly number[];
  /** The QEMU arguments for this GPU, in order. */
  readonly args: readonly string[];
}

/** The QEMU command line for a set of Grace GPUs: every argument, and each GPU's part. */
export interface GraceQemuPlan {
  /** Guest RAM and node 0, then each GPU's arguments. */
  readonly args: readonly string[];
  readonly gpus: readonly GraceGpuPlan[];
}

const UNITS: [bigint, string][] = [
  [1n << 40n, 'T'],
  [1n << 30n, 'G'],
  [1n << 20n, 'M'],
  [1n << 10n, 'K'],
];

/** QEMU's size spelling: the largest whole unit (4G, 1536M), else bytes. */
export function qemuSize(bytes: bigint): string {
  for (const [unit, suffix] of UNITS)
    if (bytes > 0n && bytes % unit === 0n) return `${bytes / unit}${suffix}`;
  return String(bytes);
}

/** The options for `gpus`, in order. */
export function graceQemuPlan(
  gpus: readonly GraceGpuFacts[],
  options: GraceQemuOptions,
): GraceQemuPlan {
  const perGpu = options.nodesPerGpu ?? 8;
  const ram = qemuSize(options.ramBytes);
  const head = [
    `-object memory-backend-memfd,id=mem,size=${ram},share=on`,
    `-machine q35 -m ${ram}`,
    '-numa node,nodeid=0,memdev=mem',
  ];
  let nextNode = 1;
  const plans = gpus.map((g, i): GraceGpuPlan => {
    const reserve = (g.barSizes[2] ?? 0n) + (g.barSizes[4] ?? 0n);
    const rootPort = `rp${i}`;
    const device = `gpu${i}`;
    // No fake BARs (nvgrace-gpu's probe failed: a plain vfio-pci device) → no coherent memory:
    // no window to reserve and no generic-initiator NUMA nodes.
    const coherent = reserve > 0n;
    const nodes = coherent ? Array.from({ length: perGpu }, () => nextNode++) : [];
    const spec = JSON.stringify({
      driver: 'vfio-user-pci',
      id: device,
      bus: rootPort,
      socket: { path: g.socket, type: 'unix' },
    });
    const args = [
      `-device pcie-root-port,id=${rootPort},bus=pcie.0,chassis=${i + 1},slot=${i + 1}${coherent ? `,pref64-reserve=${qemuSize(reserve)}` : ''}`,
      `-device '${spec}'`,
      ...nodes.map((n) => `-numa node,nodeid=${n}`),
      ...nodes.map((n) => `-object acpi-generic-initiator,id=gi${n},pci-dev=${device},node=${n}`),
    ];
    return {
      address: g.address,
      model: g.model,
      rootPort,
      device,
      pref64Reserve: reserve,
      nodes,
      args,
    };
  });
  return { args: [...head, ...plans.flatMap((p) => p.args)], gpus: plans };
}

/** The plan as text: a comment per GPU, then one option per line ending in a backslash. */
export function formatGraceQemuPlan(plan: GraceQemuPlan): string {
  const lines: string[] = [];
  for (const g of plan.gpus) {
    lines.push(
      g.nodes.length === 0
        ? `# ${g.address} ${g.model}: no coherent memory (nvgrace-gpu did not bind: a plain vfio-pci device), root port ${g.rootPort}, no NUMA nodes`
        : `# ${g.address} ${g.model}: root port ${g.rootPort} with ${qemuSize(g.pref64Reserve)} of 64-bit prefetchable window (BAR2 + BAR4), NUMA nodes ${g.nodes[0]}-${g.nodes.at(-1)} (acpi-generic-initiator, QEMU 9.0+)`,
    );
  }
  lines.push('qemu-system-x86_64 \\');
  plan.args.forEach((a, i) => {
    lines.push(`  ${a}${i === plan.args.length - 1 ? '' : ' \\'}`);
  });
  return `${lines.join('\n')}\n`;
}
