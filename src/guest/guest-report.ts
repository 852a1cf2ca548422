/**
 * How `vfio-nvlink2 guest` shows a GuestPlacement: a readable table per vPHB (device, guest
 * devfn, role, tgt, guest address of its RAM or ATSD window, NUMA node, link speed), or JSON
 * with every number as text (bigints as 0x… hex) and QEMU's errors per vPHB.
 */
import { hex, hexDigits, layoutTable } from '../text/index.ts';
import type { GuestPlacement, PlacedDevice, VphbPlacement } from './placement.ts';

function devfnName(devfn: number): string {
  return `${hexDigits(devfn >> 3, 2)}.${devfn & 7}`;
}

function sizeName(n: bigint): string {
  const units: [bigint, string][] = [
    [1n << 40n, 'TiB'],
    [1n << 30n, 'GiB'],
    [1n << 20n, 'MiB'],
    [1n << 10n, 'KiB'],
  ];
  for (const [unit, name] of units) if (n >= unit && n % unit === 0n) return `${n / unit} ${name}`;
  return `${n} B`;
}

interface Row {
  device: string;
  guest: string;
  role: string;
  tgt: string;
  address: string;
  size: string;
  numa: string;
  speed: string;
}

function rowOf(v: VphbPlacement, d: PlacedDevice): Row {
  const base = { device: d.address, guest: devfnName(d.devfn) };
  const slots = v.slots;
  const gpu = slots.find((s) => s.gpu?.address === d.address)?.gpu;
  if (gpu)
    return {
      ...base,
      role: 'gpu',
      tgt: hex(gpu.tgt),
      address: hex(gpu.gpa),
      size: sizeName(gpu.size),
      numa: String(gpu.numaId),
      speed: '-',
    };
  const link = slots.flatMap((s) => s.links).find((l) => l.address === d.address);
  if (link)
    return {
      ...base,
      role: `bridge (link ${link.npuLinkIndex})`,
      tgt: hex(link.tgt),
      address: link.atsdGpa === null ? 'no ATSD' : hex(link.atsdGpa),
      size: sizeName(link.atsdSize),
      numa: '-',
      speed: hex(link.linkSpeed),
    };
  const r = d.role;
  const why = r.role === 'plain' ? r.reason : 'not placed';
  return {
    ...base,
    role: `plain (${why})`,
    tgt: '-',
    address: '-',
    size: '-',
    numa: '-',
    speed: '-',
  };
}

function table(rows: Row[]): string[] {
  const head: Row = {
    device: 'DEVICE',
    guest: 'GUEST',
    role: 'ROLE',
    tgt: 'TGT',
    address: 'GUEST ADDRESS',
    size: 'SIZE',
    numa: 'NUMA',
    speed: 'LINK SPEED',
  };
  const keys = Object.keys(head) as (keyof Row)[];
  const cells = (r: Row) => keys.map((k) => r[k]);
  return layoutTable(cells(head), rows.map(cells)).lines;
}

function vphbText(v: VphbPlacement): string[] {
  const lines = [
    `vPHB ${v.index} (pci@${v.buid.toString(16)}): GPU RAM window ${hex(v.ramWindow)}, ATSD window ${hex(v.atsdWindow)}`,
    ...table(v.devices.map((d) => rowOf(v, d))).map((l) => `  ${l}`),
  ];
  if (v.mmioAtsd) lines.push(`  ibm,mmio-atsd: ${v.mmioAtsd.map((a) => hex(a)).join(' ')}`);
  else if (v.slots.length > 0) lines.push('  ibm,mmio-atsd: left out');
  for (const e of v.errors) lines.push(`  QEMU error: ${e}`);
  for (const n of v.notes) lines.push(`  note: ${n}`);
  return lines;
}

/** The readable table of every vPHB. */
export function formatPlacement(p: GuestPlacement): string {
  return `${p.vphbs.flatMap(vphbText).join('\n')}\n`;
}

/** The placement as plain JSON data (bigints and phandles as hex strings). */
export function placementToJson(p: GuestPlacement): unknown {
  return {
    numaNodes: p.numaNodes,
    vphbs: p.vphbs.map((v) => ({
      index: v.index,
      node: `pci@${v.buid.toString(16)}`,
      ramWindow: hex(v.ramWindow),
      atsdWindow: hex(v.atsdWindow),
      mmioAtsd: v.mmioAtsd?.map((a) => hex(a)) ?? null,
      errors: v.errors,
      notes: v.notes,
      gpus: v.slots.flatMap((s) =>
        s.gpu
          ? [
              {
                slot: s.index,
                address: s.gpu.address,
                devfn: hex(s.gpu.devfn),
                tgt: hex(s.tgt),
                gpa: hex(s.gpu.gpa),
                size: hex(s.gpu.size),
                numaId: s.gpu.numaId,
                phandle: hex(s.gpu.phandle),
                ramPhandle: hex(s.gpu.ramPhandle),
                links: s.links.map((l) => ({
                  address: l.address,
                  devfn: hex(l.devfn),
                  link: l.link,
                  npuLinkIndex: l.npuLinkIndex,
                  atsdGpa: l.atsdGpa === null ? null : hex(l.atsdGpa),
                  atsdSize: hex(l.atsdSize),
                  linkSpeed: l.linkSpeed,
                  phandle: hex(l.phandle),
                  nvlinkPhandle: hex(l.nvlinkPhandle),
                })),
              },
            ]
          : [],
      ),
      plain: v.devices
        .filter((d) => d.role.role === 'plain')
        .map((d) => ({
          address: d.address,
          devfn: hex(d.devfn),
          reason: d.role.role === 'plain' ? d.role.reason : '',
        })),
    })),
  };
}
