/**
 * The emulated skiboot NPU2 firmware calls, one state per NPU PHB: the XTS BDF→LPID map
 * (16 entries), the XTS PID map with its reference counts, and the LPID each ATSD register is
 * bound to. Follows skiboot hw/npu2.c (npu2_map_lpar, npu2_init_context, npu2_destroy_context,
 * npu_table_search) and hw/npu2-common.c (opal_npu_map_lpar / _init_context /
 * _destroy_context: unknown PHB → OPAL_PARAMETER).
 *
 * What skiboot does that one might not expect, kept on purpose:
 * - An entry is found by the GPU's 16-bit BDF (bus << 8 | devfn, no PCI domain), and never freed:
 *   mapping LPID 0 rewrites it with LPID 0 (the host), it does not clear it. A new BDF needs an
 *   all-zero entry; with 16 BDFs mapped, the 17th gets OPAL_RESOURCE ("No free XTS_BDF[] entry").
 * - A BDF no link of this NPU leads to gets OPAL_PARAMETER, after the free-entry search.
 * - Only the ATSD register of the *first* link (in link order) to the GPU is bound to the LPID.
 * - A non-zero LPCR is OPAL_UNSUPPORTED; MSR bits outside DR|HV|PR|SF are OPAL_UNSUPPORTED.
 * - init_context returns the entry index (LPARSHORT, ≥ 0) on success, not OPAL_SUCCESS.
 */
import { readU64 } from '../fdt/index.ts';
import {
  Msr,
  NPU2_ATSD_REGISTERS,
  NPU2_VALID_ATS_MSR_BITS,
  NPU2_XTS_BDF_MAP_SIZE,
  OpalRc,
  OpalToken,
} from './firmware-opal.ts';
import type { Host, Phb } from './types.ts';

/** One NVLink brick of an NPU, as skiboot's p->devices[] knows it. */
export interface Npu2Link {
  /** `ibm,npu-link-index` (skiboot ndev->link_index; also its brick index). */
  readonly linkIndex: number;
  /** The GPU's BDF (bus << 8 | devfn); undefined when the link leads to no GPU. */
  readonly gpuBdf: number | undefined;
  readonly gpuName: string | undefined;
  readonly bridgeName: string;
}

/**
 * What the firmware knows of one NPU PHB from the tree: its OPAL PHB id, domain, path, chip, links and ATSD register addresses.
 */
export interface Npu2Description {
  /** OPAL PHB id of the NPU PHB (`ibm,opal-phbid`, else the PCI domain). */
  readonly phbId: bigint;
  /** The NPU PHB's PCI domain and node path, for messages. */
  readonly domain: number;
  readonly path: string;
  readonly chipId: number | undefined;
  readonly links: readonly Npu2Link[];
  /** `ibm,mmio-atsd`: the physical address of each ATSD register. */
  readonly atsdAddresses: readonly bigint[];
}

/** An XTS_BDF_MAP entry (skiboot NPU2_XTS_BDF_MAP_* fields). */
export interface XtsBdfEntry {
  readonly index: number;
  readonly bdf: number;
  readonly lpid: number;
  /** Set by init_context. */
  readonly valid: boolean;
  readonly unfilt: boolean;
  /** 0x3: radix. */
  readonly xlat: number;
  /** 0x4 >> (brick / 2). */
  readonly stack: number;
  /** brick % 2. */
  readonly brick: number;
  /** LPARSHORT: the entry's own index. */
  readonly lparShort: number;
}

/** An XTS_PID_MAP wildcard entry and its reference count (p->ctx_ref[]). */
export interface XtsPidEntry {
  readonly index: number;
  readonly lparShort: number;
  readonly msr: {
    readonly dr: boolean;
    readonly hv: boolean;
    readonly pr: boolean;
    readonly sf: boolean;
  };
  readonly refs: number;
}

/** NPU2_XTS_MMIO_ATSDn_LPARID. */
export interface AtsdBinding {
  readonly index: number;
  readonly address: bigint | undefined;
  readonly lpid: number;
  readonly msrHv: boolean;
}

/**
 * The state of one NPU's firmware tables, for tests and `inspect`: the XTS BDF and PID maps and the
 * ATSD LPID bindings.
 */
export interface Npu2Snapshot {
  readonly phbId: bigint;
  readonly domain: number;
  readonly path: string;
  readonly bdfMap: readonly XtsBdfEntry[];
  readonly pidMap: readonly XtsPidEntry[];
  readonly atsd: readonly AtsdBinding[];
}

type PidWord = Omit<XtsPidEntry, 'index' | 'refs'>;

class Npu2State {
  readonly bdfMap: (XtsBdfEntry | undefined)[] = new Array(NPU2_XTS_BDF_MAP_SIZE).fill(undefined);
  readonly pidMap: (PidWord | undefined)[] = new Array(NPU2_XTS_BDF_MAP_SIZE).fill(undefined);
  readonly ctxRef: number[] = new Array(NPU2_XTS_BDF_MAP_SIZE).fill(0);
  readonly atsd: { lpid: number; msrHv: boolean }[] = Array.from(
    { length: NPU2_ATSD_REGISTERS },
    () => ({
      lpid: 0,
      msrHv: false,
    }),
  );
  constructor(readonly desc: Npu2Description) {}

  /** npu_table_search(NPU2_XTS_BDF_MAP, …, NPU2_XTS_BDF_MAP_BDF) */
  findBdf(bdf: number): number {
    return this.bdfMap.findIndex((e) => e !== undefined && e.bdf === bdf);
  }
}

/** Firmware messages (skiboot's NPU2ERR / NPU2DBG / prlog), for logs and tests. */
export type FirmwareLog = (level: 'err' | 'info' | 'dbg', message: string) => void;

/**
 * The NPU2 firmware (skiboot hw/npu2.c) of every NPU PHB of a host: MAP_LPAR, INIT_CONTEXT and
 * DESTROY_CONTEXT with their OPAL return codes, as the module header describes.
 */
export class Npu2Firmware {
  private readonly npus = new Map<bigint, Npu2State>();

  constructor(
    npus: readonly Npu2Description[],
    private readonly log: FirmwareLog = () => {},
  ) {
    for (const d of npus) this.npus.set(d.phbId, new Npu2State(d));
  }

  /** The firmware of every NPU2 PHB of `host`. */
  static fromHost(host: Host, log?: FirmwareLog): Npu2Firmware {
    return new Npu2Firmware(describeNpus(host), log);
  }

  descriptions(): Npu2Description[] {
    return [...this.npus.values()].map((n) => n.desc);
  }

  private err(p: Npu2State, message: string): void {
    this.log('err', `NPU${p.desc.chipId ?? '?'}: ${message}`);
  }

  /** OPAL_NPU_MAP_LPAR (148): opal_npu_map_lpar → npu2_map_lpar. */
  mapLpar(phbId: bigint, bdf: number, lpid: number, lpcr: bigint): number {
    const p = this.npus.get(phbId);
    if (!p) return OpalRc.PARAMETER;
    // "The LPCR bits are only required for hash based ATS, which we don't currently support"
    if (lpcr !== 0n) return OpalRc.UNSUPPORTED;
    let id = p.findBdf(bdf);
    if (id < 0) id = p.bdfMap.indexOf(undefined);
    if (id < 0) {
      this.err(p, 'No free XTS_BDF[] entry');
      return OpalRc.RESOURCE;
    }
    const ndev = p.desc.links.find((l) => l.gpuBdf === bdf);
    if (!ndev) {
      this.err(p, `Unable to find nvlink for bdf ${bdf.toString(16)}`);
      return OpalRc.PARAMETER;
    }
    if (ndev.linkIndex < NPU2_ATSD_REGISTERS) {
      p.atsd[ndev.linkIndex] = { lpid, msrHv: lpid === 0 };
    } else this.err(p, `Unable to assign ATSD for link index ${ndev.linkIndex}`);
    p.bdfMap[id] = {
      index: id,
      bdf,
      lpid,
      valid: false,
      unfilt: true,
      xlat: 0x3,
      stack: 0x4 >> Math.floor(ndev.linkIndex / 2),
      brick: ndev.linkIndex % 2,
      lparShort: id,
    };
    // "Reset wildcard in the PID map and the refcounter"
    if (p.pidMap[id] !== undefined || p.ctxRef[id] !== 0) {
      this.log('info', `Resetting PID MAP for LPID ${lpid}`);
      p.ctxRef[id] = 0;
      p.pidMap[id] = undefined;
    }
    return OpalRc.SUCCESS;
  }

  /**
   * OPAL_NPU_INIT_CONTEXT (146): npu2_init_context. `pid` is unused by skiboot.
   * @returns the LPARSHORT (≥ 0), or OPAL_UNSUPPORTED / OPAL_PARAMETER / OPAL_INTERNAL_ERROR.
   */
  initContext(phbId: bigint, _pid: number, msr: bigint, bdf: number): number {
    const p = this.npus.get(phbId);
    if (!p) return OpalRc.PARAMETER;
    if ((msr & ~NPU2_VALID_ATS_MSR_BITS) !== 0n) return OpalRc.UNSUPPORTED;
    const id = p.findBdf(bdf);
    if (id < 0) {
      this.err(p, 'LPARID not associated with any GPU');
      return OpalRc.PARAMETER;
    }
    const word: PidWord = {
      lparShort: id,
      // "We don't support anything other than 64-bit so we can safely hardcode it here"
      msr: {
        dr: (msr & Msr.DR) !== 0n,
        hv: (msr & Msr.HV) !== 0n,
        pr: (msr & Msr.PR) !== 0n,
        sf: true,
      },
    };
    const old = p.pidMap[id];
    if (old) {
      const same =
        old.msr.dr === word.msr.dr && old.msr.hv === word.msr.hv && old.msr.pr === word.msr.pr;
      if (!same) {
        this.err(p, 'npu2_init_context: Unexpected MSR value');
        return OpalRc.PARAMETER;
      }
      if (p.ctxRef[id] === 0) {
        this.err(p, 'npu2_init_context: Unexpected mapping');
        return OpalRc.INTERNAL_ERROR;
      }
    }
    if (p.ctxRef[id] === 0) {
      p.pidMap[id] = word;
      const e = p.bdfMap[id] as XtsBdfEntry;
      if (!e.valid) p.bdfMap[id] = { ...e, valid: true };
    }
    p.ctxRef[id] = (p.ctxRef[id] ?? 0) + 1;
    return id;
  }

  /** OPAL_NPU_DESTROY_CONTEXT (147): npu2_destroy_context. */
  destroyContext(phbId: bigint, _pid: number, bdf: number): number {
    const p = this.npus.get(phbId);
    if (!p) return OpalRc.PARAMETER;
    const id = p.findBdf(bdf);
    if (id < 0) {
      this.err(p, 'LPARID not associated with any GPU');
      return OpalRc.PARAMETER;
    }
    if ((p.ctxRef[id] ?? 0) === 0) return OpalRc.PARAMETER;
    p.ctxRef[id] = (p.ctxRef[id] ?? 0) - 1;
    if (p.ctxRef[id] === 0) p.pidMap[id] = undefined;
    return OpalRc.SUCCESS;
  }

  /** The OPAL entry by token (148 MAP_LPAR, 146 INIT_CONTEXT, 147 DESTROY_CONTEXT); other tokens → OPAL_PARAMETER. */
  opalCall(token: number, args: readonly bigint[]): number {
    const a = (i: number) => args[i] ?? 0n;
    switch (token) {
      case OpalToken.NPU_MAP_LPAR:
        return this.mapLpar(a(0), Number(a(1)), Number(a(2)), a(3));
      case OpalToken.NPU_INIT_CONTEXT:
        return this.initContext(a(0), Number(a(1)), a(2), Number(a(3)));
      case OpalToken.NPU_DESTROY_CONTEXT:
        return this.destroyContext(a(0), Number(a(1)), Number(a(2)));
      default:
        return OpalRc.PARAMETER;
    }
  }

  /** The ATSD register at physical `address` and the LPID bound to it. */
  atsdAt(address: bigint): { npu: Npu2Description; binding: AtsdBinding } | undefined {
    for (const p of this.npus.values()) {
      const index = p.desc.atsdAddresses.indexOf(address);
      if (index >= 0 && index < NPU2_ATSD_REGISTERS) {
        const reg = p.atsd[index] as { lpid: number; msrHv: boolean };
        return { npu: p.desc, binding: { index, address, ...reg } };
      }
    }
    return undefined;
  }

  /**
   * Puts back tables taken by `snapshot` of the same host (serve --state-dir).
   * @throws Error naming the PHB or entry that does not fit this host's NPUs.
   */
  restore(snapshots: readonly Npu2Snapshot[]): void {
    for (const s of snapshots) {
      const p = this.npus.get(s.phbId);
      if (!p) throw new Error(`no NPU PHB with OPAL id ${s.phbId}`);
      const index = (i: number, what: string) => {
        if (!Number.isInteger(i) || i < 0 || i >= NPU2_XTS_BDF_MAP_SIZE)
          throw new Error(`NPU PHB ${s.phbId}: ${what} entry ${i} out of range`);
        return i;
      };
      p.bdfMap.fill(undefined);
      p.pidMap.fill(undefined);
      p.ctxRef.fill(0);
      for (const e of s.bdfMap) p.bdfMap[index(e.index, 'XTS_BDF_MAP')] = { ...e };
      for (const { index: i, refs, ...word } of s.pidMap) {
        p.pidMap[index(i, 'XTS_PID_MAP')] = { ...word, msr: { ...word.msr } };
        p.ctxRef[i] = refs;
      }
      for (const a of s.atsd) {
        const reg = p.atsd[a.index];
        if (!reg) throw new Error(`NPU PHB ${s.phbId}: no ATSD register ${a.index}`);
        reg.lpid = a.lpid;
        reg.msrHv = a.msrHv;
      }
    }
  }

  /** A copy of every NPU's tables (only used entries of the BDF and PID maps). */
  snapshot(): Npu2Snapshot[] {
    return [...this.npus.values()].map((p) => ({
      phbId: p.desc.phbId,
      domain: p.desc.domain,
      path: p.desc.path,
      bdfMap: p.bdfMap.filter((e): e is XtsBdfEntry => e !== undefined),
      pidMap: p.pidMap.flatMap((w, index) =>
        w ? [{ index, ...w, refs: p.ctxRef[index] ?? 0 }] : [],
      ),
      atsd: p.atsd.map((r, index) => ({ index, address: p.desc.atsdAddresses[index], ...r })),
    }));
  }
}

/** pci_dev_id(): the 16-bit BDF firmware tables key on. */
export function bdfOf(fn: {
  readonly address: { readonly bus: number };
  readonly devfn: number;
}): number {
  return (fn.address.bus << 8) | fn.devfn;
}

/** The OPAL PHB id Linux reads (`ibm,opal-phbid`), else the PHB's PCI domain. */
export function opalPhbId(phb: Phb): bigint {
  return phb.node.hasProperty('ibm,opal-phbid')
    ? readU64(phb.node, 'ibm,opal-phbid')
    : BigInt(phb.domain);
}

/** Every NPU2 PHB of `host` with its links in link order, as skiboot's p->devices[] has them. */
export function describeNpus(host: Host): Npu2Description[] {
  return host.phbs
    .filter((phb) => phb.isNpu)
    .map((phb) => {
      const links: Npu2Link[] = [];
      for (const bridge of phb.functions) {
        const { linkIndex } = host.nvlinkOfBridge(bridge);
        if (linkIndex === undefined) continue;
        const gpu = host.gpuOfBridge(bridge);
        links.push({
          linkIndex,
          gpuBdf: gpu ? bdfOf(gpu) : undefined,
          gpuName: gpu?.name,
          bridgeName: bridge.name,
        });
      }
      links.sort((a, b) => a.linkIndex - b.linkIndex);
      return {
        phbId: opalPhbId(phb),
        domain: phb.domain,
        path: phb.node.path,
        chipId: phb.chipId,
        links,
        atsdAddresses: host.atsdAddresses(phb),
      };
    });
}
