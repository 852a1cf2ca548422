/**
 * The standard capabilities of a config space, decoded as `lspci -vvv` decodes them (pciutils
 * 3.9.0, Debian 12's: ls-caps.c cap_pm, cap_msi, cap_msix, cap_express with cap_express_dev and
 * cap_express_link, ls-caps-vendor.c show_vendor_caps; register layouts from lib/header.h, the
 * same as Linux include/uapi/linux/pci_regs.h). Pure: config bytes in, for each capability its
 * registers (named as pci_regs.h names them) and lspci's lines out, so `inspect` shows what
 * lspci would show for the same bytes (test/inspect-lspci.test.ts feeds both the same dump).
 * The PCIe capability is decoded up to Link Status (DevCap2 and after are not).
 */
import { hex, hexDigits } from '../text/index.ts';

/** One capability of the list at 0x34: id, name, offset, registers and lspci's text. */
export interface PciCapabilitySummary {
  readonly id: number;
  readonly name: string;
  readonly offset: number;
  /** Its registers as read, by pci_regs.h name (`PCI_EXP_LNKSTA` → `lnkSta`), as hex strings of their width. */
  readonly registers: Readonly<Record<string, string>>;
  /** What `lspci -vvv` prints for it: the `Capabilities: [xx] …` line, then its detail lines (tabs as lspci's). */
  readonly lines: readonly string[];
}

/** PCI capability IDs (pci_regs.h PCI_CAP_ID_*) this module decodes. */
export const PciCapId = {
  PM: 0x01,
  MSI: 0x05,
  VNDR: 0x09,
  EXP: 0x10,
  MSIX: 0x11,
} as const;

const NAMES: Record<number, string> = {
  [PciCapId.PM]: 'Power Management',
  [PciCapId.MSI]: 'MSI',
  [PciCapId.VNDR]: 'Vendor Specific',
  [PciCapId.EXP]: 'PCI Express',
  [PciCapId.MSIX]: 'MSI-X',
};

/** Little-endian reads of a 256-byte config header (zero past what was read). */
class ConfigView {
  readonly #view: DataView;
  constructor(config: Uint8Array) {
    const full = new Uint8Array(Math.max(config.length, 0x100));
    full.set(config);
    this.#view = new DataView(full.buffer);
  }
  byte(at: number): number {
    return at < this.#view.byteLength ? this.#view.getUint8(at) : 0;
  }
  word(at: number): number {
    return this.byte(at) | (this.byte(at + 1) << 8);
  }
  long(at: number): number {
    return (this.word(at) | (this.word(at + 2) << 16)) >>> 0;
  }
}

/** lspci's FLAG(x, y): '+' when any bit of y is set in x, else '-'. */
const flag = (x: number, bits: number): string => ((x & bits) !== 0 ? '+' : '-');

/** A decoded capability before it gets its header line's offset. */
interface Decoded {
  readonly registers: Record<string, number | [number, number]>;
  readonly title: string;
  readonly details: string[];
}

const PM_AUX_CURRENT = [0, 55, 100, 160, 220, 270, 320, 375];

/** ls-caps.c cap_pm. */
function decodePm(c: ConfigView, at: number): Decoded {
  const pmc = c.word(at + 2);
  const pmcsr = c.word(at + 4);
  const bse = c.byte(at + 6);
  const details = [
    `\t\tFlags: PMEClk${flag(pmc, 0x8)} DSI${flag(pmc, 0x20)} D1${flag(pmc, 0x200)} D2${flag(pmc, 0x400)} AuxCurrent=${PM_AUX_CURRENT[(pmc & 0x1c0) >> 6]}mA PME(D0${flag(pmc, 0x800)},D1${flag(pmc, 0x1000)},D2${flag(pmc, 0x2000)},D3hot${flag(pmc, 0x4000)},D3cold${flag(pmc, 0x8000)})`,
    `\t\tStatus: D${pmcsr & 3} NoSoftRst${flag(pmcsr, 0x8)} PME-Enable${flag(pmcsr, 0x100)} DSel=${(pmcsr & 0x1e00) >> 9} DScale=${(pmcsr & 0x6000) >> 13} PME${flag(pmcsr, 0x8000)}`,
  ];
  if (bse !== 0) details.push(`\t\tBridge: PM${flag(bse, 0x80)} B3${flag(~bse, 0x40)}`);
  return {
    registers: { pmc: [pmc, 4], pmcsr: [pmcsr, 4], bse: [bse, 2] },
    title: `Power Management version ${pmc & 7}`,
    details,
  };
}

/** ls-caps.c cap_msi. */
function decodeMsi(c: ConfigView, at: number): Decoded {
  const flags = c.word(at + 2);
  const is64 = (flags & 0x80) !== 0;
  const maskable = (flags & 0x100) !== 0;
  const addressLo = c.long(at + 4);
  const addressHi = is64 ? c.long(at + 8) : 0;
  const data = c.word(at + (is64 ? 12 : 8));
  const registers: Decoded['registers'] = { flags: [flags, 4], addressLo: [addressLo, 8] };
  if (is64) registers.addressHi = [addressHi, 8];
  registers.data = [data, 4];
  const address = `${is64 ? hexDigits(addressHi, 8) : ''}${hexDigits(addressLo, 8)}`;
  const details = [`\t\tAddress: ${address}  Data: ${hexDigits(data, 4)}`];
  if (maskable) {
    const mask = c.long(at + (is64 ? 16 : 12));
    const pending = c.long(at + (is64 ? 20 : 16));
    registers.mask = [mask, 8];
    registers.pending = [pending, 8];
    details.push(`\t\tMasking: ${hexDigits(mask, 8)}  Pending: ${hexDigits(pending, 8)}`);
  }
  return {
    registers,
    title: `MSI: Enable${flag(flags, 1)} Count=${1 << ((flags & 0x70) >> 4)}/${1 << ((flags & 0xe) >> 1)} Maskable${flag(flags, 0x100)} 64bit${flag(flags, 0x80)}`,
    details,
  };
}

/** ls-caps.c cap_msix. */
function decodeMsix(c: ConfigView, at: number): Decoded {
  const flags = c.word(at + 2);
  const table = c.long(at + 4);
  const pba = c.long(at + 8);
  const where = (v: number) => `BAR=${v & 7} offset=${hexDigits((v & ~7) >>> 0, 8)}`;
  return {
    registers: { flags: [flags, 4], table: [table, 8], pba: [pba, 8] },
    title: `MSI-X: Enable${flag(flags, 0x8000)} Count=${(flags & 0x7ff) + 1} Masked${flag(flags, 0x4000)}`,
    details: [`\t\tVector table: ${where(table)}`, `\t\tPBA: ${where(pba)}`],
  };
}

/** ls-caps-vendor.c show_vendor_caps (no vendor's own decoder: NVIDIA and IBM have none there). */
function decodeVendor(c: ConfigView, at: number): Decoded {
  const length = c.byte(at + 2);
  return {
    registers: { length: [length, 2] },
    title: `Vendor Specific Information: Len=${hexDigits(length, 2)} <?>`,
    details: [],
  };
}

/** PCI_EXP_TYPE_* (pci_regs.h) as lspci names them; a slot flag follows some. */
const EXP_TYPES: Record<number, string> = {
  0: 'Endpoint',
  1: 'Legacy Endpoint',
  4: 'Root Port',
  5: 'Upstream Port',
  6: 'Downstream Port',
  7: 'PCI-Express to PCI/PCI-X Bridge',
  8: 'PCI/PCI-X to PCI-Express Bridge',
  9: 'Root Complex Integrated Endpoint',
  10: 'Root Complex Event Collector',
};
const EXP_ENDPOINT = 0x0;
const EXP_LEG_END = 0x1;
const EXP_ROOT_PORT = 0x4;
const EXP_UPSTREAM = 0x5;
const EXP_DOWNSTREAM = 0x6;
const EXP_PCI_BRIDGE = 0x7;
const EXP_PCIE_BRIDGE = 0x8;
const EXP_ROOT_INT_EP = 0x9;
const EXP_ROOT_EC = 0xa;

const L0S = ['<64ns', '<128ns', '<256ns', '<512ns', '<1us', '<2us', '<4us', 'unlimited'];
const L1 = ['<1us', '<2us', '<4us', '<8us', '<16us', '<32us', '<64us', 'unlimited'];
const SPEEDS: Record<number, string> = {
  1: '2.5GT/s',
  2: '5GT/s',
  3: '8GT/s',
  4: '16GT/s',
  5: '32GT/s',
  6: '64GT/s',
};
const linkSpeed = (code: number): string => SPEEDS[code] ?? 'unknown';
const ASPM_SUPPORT = ['not supported', 'L0s', 'L1', 'L0s L1'];
const ASPM_ENABLED = ['Disabled', 'L0s Enabled', 'L1 Enabled', 'L0s L1 Enabled'];

const POWER_SCALES = [1, 0.1, 0.01, 0.001];

/** ls-caps.c show_power_limit: C's %g of value × scale. */
function powerLimit(value: number, scale: number): string {
  if (scale === 0 && value === 0xff) return '>600W';
  const v = scale === 0 && value >= 0xf0 && value <= 0xfe ? 250 + 25 * (value - 0xf0) : value;
  return `${Number((v * (POWER_SCALES[scale] ?? 1)).toPrecision(6))}W`;
}

/** ls-caps.c cap_express_dev: DevCap, DevCtl, DevSta. */
function expressDevLines(devCap: number, devCtl: number, devSta: number, type: number): string[] {
  const endpoint = type === EXP_ENDPOINT || type === EXP_LEG_END;
  const flr = endpoint || type === EXP_ROOT_INT_EP;
  let cap = `\t\tDevCap:\tMaxPayload ${128 << (devCap & 7)} bytes, PhantFunc ${(1 << ((devCap & 0x18) >> 3)) - 1}`;
  if (endpoint)
    cap += `, Latency L0s ${L0S[(devCap & 0x1c0) >> 6]}, L1 ${L1[(devCap & 0xe00) >> 9]}`;
  let cap2 = `\t\t\tExtTag${flag(devCap, 0x20)}`;
  if (endpoint || type === EXP_UPSTREAM || type === EXP_PCI_BRIDGE)
    cap2 += ` AttnBtn${flag(devCap, 0x1000)} AttnInd${flag(devCap, 0x2000)} PwrInd${flag(devCap, 0x4000)}`;
  cap2 += ` RBE${flag(devCap, 0x8000)}`;
  if (flr) cap2 += ` FLReset${flag(devCap, 0x10000000)}`;
  if (type === EXP_ENDPOINT || type === EXP_UPSTREAM || type === EXP_PCI_BRIDGE)
    cap2 += ` SlotPowerLimit ${powerLimit((devCap & 0x3fc0000) >> 18, (devCap & 0xc000000) >>> 26)}`;
  let ctl2 = `\t\t\tRlxdOrd${flag(devCtl, 0x10)} ExtTag${flag(devCtl, 0x100)} PhantFunc${flag(devCtl, 0x200)} AuxPwr${flag(devCtl, 0x400)} NoSnoop${flag(devCtl, 0x800)}`;
  if (type === EXP_PCI_BRIDGE) ctl2 += ` BrConfRtry${flag(devCtl, 0x8000)}`;
  if (flr && (devCap & 0x10000000) !== 0) ctl2 += ` FLReset${flag(devCtl, 0x8000)}`;
  return [
    cap,
    cap2,
    `\t\tDevCtl:\tCorrErr${flag(devCtl, 1)} NonFatalErr${flag(devCtl, 2)} FatalErr${flag(devCtl, 4)} UnsupReq${flag(devCtl, 8)}`,
    ctl2,
    `\t\t\tMaxPayload ${128 << ((devCtl & 0xe0) >> 5)} bytes, MaxReadReq ${128 << ((devCtl & 0x7000) >> 12)} bytes`,
    `\t\tDevSta:\tCorrErr${flag(devSta, 1)} NonFatalErr${flag(devSta, 2)} FatalErr${flag(devSta, 4)} UnsupReq${flag(devSta, 8)} AuxPwr${flag(devSta, 0x10)} TransPend${flag(devSta, 0x20)}`,
  ];
}

/** ls-caps.c link_compare: what lspci adds after a status below (or above) the capability. */
function linkCompare(type: number, sta: number, cap: number): string {
  if (sta > cap) return ' (overdriven)';
  if (sta === cap) return '';
  if (type === EXP_ROOT_PORT || type === EXP_DOWNSTREAM || type === EXP_PCIE_BRIDGE) return '';
  return ' (downgraded)';
}

/** ls-caps.c cap_express_link: LnkCap, LnkCtl, LnkSta. */
function expressLinkLines(lnkCap: number, lnkCtl: number, lnkSta: number, type: number): string[] {
  const aspm = (lnkCap & 0xc00) >> 10;
  const capSpeed = lnkCap & 0xf;
  const capWidth = (lnkCap & 0x3f0) >> 4;
  let cap = `\t\tLnkCap:\tPort #${lnkCap >>> 24}, Speed ${linkSpeed(capSpeed)}, Width x${capWidth}, ASPM ${ASPM_SUPPORT[aspm]}`;
  if (aspm !== 0) {
    cap += ', Exit Latency ';
    if (aspm & 1) cap += `L0s ${L0S[(lnkCap & 0x7000) >> 12]}`;
    if (aspm & 2) cap += `${aspm & 1 ? ', ' : ''}L1 ${L1[(lnkCap & 0x38000) >> 15]}`;
  }
  let ctl = `\t\tLnkCtl:\tASPM ${ASPM_ENABLED[lnkCtl & 3]};`;
  if (
    type === EXP_ROOT_PORT ||
    type === EXP_ENDPOINT ||
    type === EXP_LEG_END ||
    type === EXP_PCI_BRIDGE
  )
    ctl += ` RCB ${lnkCtl & 0x8 ? 128 : 64} bytes,`;
  ctl += ` Disabled${flag(lnkCtl, 0x10)} CommClk${flag(lnkCtl, 0x40)}`;
  const staSpeed = lnkSta & 0xf;
  const staWidth = (lnkSta & 0x3f0) >> 4;
  return [
    cap,
    `\t\t\tClockPM${flag(lnkCap, 0x40000)} Surprise${flag(lnkCap, 0x80000)} LLActRep${flag(lnkCap, 0x100000)} BwNot${flag(lnkCap, 0x200000)} ASPMOptComp${flag(lnkCap, 0x400000)}`,
    ctl,
    `\t\t\tExtSynch${flag(lnkCtl, 0x80)} ClockPM${flag(lnkCtl, 0x100)} AutWidDis${flag(lnkCtl, 0x200)} BWInt${flag(lnkCtl, 0x400)} AutBWInt${flag(lnkCtl, 0x800)}`,
    `\t\tLnkSta:\tSpeed ${linkSpeed(staSpeed)}${linkCompare(type, staSpeed, capSpeed)}, Width x${staWidth}${linkCompare(type, staWidth, capWidth)}`,
    `\t\t\tTrErr${flag(lnkSta, 0x400)} Train${flag(lnkSta, 0x800)} SlotClk${flag(lnkSta, 0x1000)} DLActive${flag(lnkSta, 0x2000)} BWMgmt${flag(lnkSta, 0x4000)} ABWMgmt${flag(lnkSta, 0x8000)}`,
  ];
}

/** ls-caps.c cap_express, up to Link Status (lspci goes on with slot, root and the *2 registers). */
function decodeExpress(c: ConfigView, at: number): Decoded {
  const flags = c.word(at + 2);
  const type = (flags & 0xf0) >> 4;
  const slotted = type === EXP_ROOT_PORT || type === EXP_DOWNSTREAM || type === EXP_PCIE_BRIDGE;
  const name = EXP_TYPES[type] ?? `Unknown type ${type}`;
  const typeText = slotted ? `${name} (Slot${flag(flags, 0x100)})` : name;
  const devCap = c.long(at + 4);
  const devCtl = c.word(at + 8);
  const devSta = c.word(at + 10);
  const registers: Decoded['registers'] = {
    flags: [flags, 4],
    devCap: [devCap, 8],
    devCtl: [devCtl, 4],
    devSta: [devSta, 4],
  };
  const details = expressDevLines(devCap, devCtl, devSta, type);
  if (type !== EXP_ROOT_INT_EP && type !== EXP_ROOT_EC) {
    const lnkCap = c.long(at + 12);
    const lnkCtl = c.word(at + 16);
    const lnkSta = c.word(at + 18);
    Object.assign(registers, { lnkCap: [lnkCap, 8], lnkCtl: [lnkCtl, 4], lnkSta: [lnkSta, 4] });
    details.push(...expressLinkLines(lnkCap, lnkCtl, lnkSta, type));
  }
  return {
    registers,
    title: `Express (v${flags & 0xf}) ${typeText}, MSI ${hexDigits((flags & 0x3e00) >> 9, 2)}`,
    details,
  };
}

const DECODERS: Record<number, (c: ConfigView, at: number) => Decoded> = {
  [PciCapId.PM]: decodePm,
  [PciCapId.MSI]: decodeMsi,
  [PciCapId.VNDR]: decodeVendor,
  [PciCapId.EXP]: decodeExpress,
  [PciCapId.MSIX]: decodeMsix,
};

function summarize(c: ConfigView, id: number, at: number): PciCapabilitySummary {
  const decode = DECODERS[id];
  const head = `\tCapabilities: [${hexDigits(at, 2)}] `;
  const name = NAMES[id] ?? `cap ${hex(id, 2)}`;
  if (!decode) return { id, name, offset: at, registers: {}, lines: [`${head}${name} <?>`] };
  const d = decode(c, at);
  const registers: Record<string, string> = {};
  for (const [k, v] of Object.entries(d.registers))
    registers[k] = Array.isArray(v) ? hex(v[0], v[1]) : hex(v);
  return { id, name, offset: at, registers, lines: [`${head}${d.title}`, ...d.details] };
}

/**
 * The capability list of a config space (from 0x34 when Status has Capabilities List), each
 * decoded as lspci decodes it; stops at a loop or a pointer outside 0x40–0xff, as lspci's walk
 * does (ls-caps.c show_caps, "<chain looped>").
 */
export function decodePciCapabilities(config: Uint8Array): PciCapabilitySummary[] {
  const c = new ConfigView(config);
  const caps: PciCapabilitySummary[] = [];
  if ((c.word(0x06) & 0x10) === 0) return caps;
  const seen = new Set<number>();
  let at = c.byte(0x34) & 0xfc;
  while (at >= 0x40 && !seen.has(at)) {
    seen.add(at);
    const id = c.byte(at);
    if (id === 0xff) break; // lspci: "<chain broken>"
    caps.push(summarize(c, id, at));
    at = c.byte(at + 1) & 0xfc;
  }
  return caps;
}

/** lspci.c show_verbose's `Control:` and `Status:` lines for Command and Status (-vv). */
export function commandStatusLines(command: number, status: number): string[] {
  const devsel = ['fast', 'medium', 'slow', '??'][(status & 0x600) >> 9];
  return [
    `\tControl: I/O${flag(command, 1)} Mem${flag(command, 2)} BusMaster${flag(command, 4)} SpecCycle${flag(command, 8)} MemWINV${flag(command, 0x10)} VGASnoop${flag(command, 0x20)} ParErr${flag(command, 0x40)} Stepping${flag(command, 0x80)} SERR${flag(command, 0x100)} FastB2B${flag(command, 0x200)} DisINTx${flag(command, 0x400)}`,
    `\tStatus: Cap${flag(status, 0x10)} 66MHz${flag(status, 0x20)} UDF${flag(status, 0x40)} FastB2B${flag(status, 0x80)} ParErr${flag(status, 0x100)} DEVSEL=${devsel} >TAbort${flag(status, 0x800)} <TAbort${flag(status, 0x1000)} <MAbort${flag(status, 0x2000)} >SERR${flag(status, 0x4000)} <PERR${flag(status, 0x8000)} INTx${flag(status, 0x8)}`,
  ];
}

/**
 * Config space as `lspci -xxx` (the 256 bytes of the header and capabilities) or `-xxxx` (all of
 * it, up to 4096) dumps it: 16 bytes a line, `xx: ` offsets (`xxx: ` past 0xff), lower-case hex.
 */
export function lspciHexLines(config: Uint8Array, extended: boolean): string[] {
  const end = extended ? config.length : Math.min(config.length, 0x100);
  const lines: string[] = [];
  for (let at = 0; at < end; at += 16) {
    const bytes = [...config.subarray(at, Math.min(at + 16, end))].map((b) => hexDigits(b, 2));
    lines.push(`${hexDigits(at, 2)}: ${bytes.join(' ')}`);
  }
  return lines;
}
