/** A default-platform host with an NVLink2 context traced into a ring buffer (test support). */

import type { Fdt } from '../../../src/fdt/index.ts';
import {
  createNvlink2Context,
  type KernelLogLine,
  type Nvlink2Context,
  type Nvlink2ContextOptions,
} from '../../../src/nvlink2/context.ts';
import { nvlink2Variant } from '../../../src/nvlink2/variant.ts';
import type { Host, PciFunction } from '../../../src/platform/index.ts';
import { buildHost, defaultPlatformTree } from '../../../src/platform/index.ts';
import { RingBufferSink, Tracer } from '../../../src/trace/index.ts';
import { VfioPciDevice, variantFor } from '../../../src/vfio/index.ts';

export interface Fixture {
  readonly host: Host;
  readonly ctx: Nvlink2Context;
  readonly ring: RingBufferSink;
  readonly logs: KernelLogLine[];
  fn(name: string): PciFunction;
  /** A core device bound to the NVLink2 variant when it matches, opened. */
  open(name: string): VfioPciDevice;
  /** Dispose every device opened and close all memfds. */
  done(): void;
}

export function fixture(
  options: Omit<Nvlink2ContextOptions, 'tracer' | 'log'> = {},
  tree: Fdt = defaultPlatformTree(),
): Fixture {
  const host = buildHost(tree);
  const ring = new RingBufferSink(1 << 16);
  const tracer = new Tracer({ clock: () => 1_000_000n, task: 'test', pid: 1, cpu: 0 });
  tracer.attach(ring);
  const logs: KernelLogLine[] = [];
  const ctx = createNvlink2Context(host, { ...options, tracer, log: (l) => logs.push(l) });
  const variant = nvlink2Variant(ctx);
  const devices: VfioPciDevice[] = [];
  const fn = (name: string): PciFunction => {
    const f = host.functionByName(name);
    if (!f) throw new Error(`no ${name}`);
    return f;
  };
  return {
    host,
    ctx,
    ring,
    logs,
    fn,
    open(name) {
      const f = fn(name);
      const d = new VfioPciDevice(f, host, variantFor([variant], f));
      devices.push(d);
      d.open();
      return d;
    },
    done() {
      for (const d of devices) d.dispose();
      ctx.atsd.settleAll();
      for (const p of ctx.atsd.all()) while (p.mappingCount > 0) p.unmapped();
      ctx.memory.closeAll();
    },
  };
}
