/**
 * A DeviceDescription as text for `vfio-nvlink2 inspect`: device info, every region's info
 * decoded (with `hex`, the raw GET_REGION_INFO reply as a hexdump), IRQ info and a config-space
 * summary. Pure: description in, lines out.
 */

import { hexDigits } from '../text/index.ts';
import type { CapabilityDescription, DeviceDescription, RegionDescriptionOut } from './describe.ts';
import { commandStatusLines, decodePciCapabilities, lspciHexLines } from './pci-capabilities.ts';

/** Options of `describeText`. */
export interface TextOptions {
  /** Add the raw region-info reply bytes under each region, and config space as `lspci -xxx` dumps it. */
  readonly hex?: boolean;
}

/** 16 bytes a line: offset, hex bytes, as `xxd` groups them. */
export function hexdump(hexBytes: string, indent = ''): string[] {
  const lines: string[] = [];
  for (let at = 0; at < hexBytes.length; at += 32) {
    const chunk = hexBytes.slice(at, at + 32).match(/../g) ?? [];
    lines.push(`${indent}${hexDigits(at / 2, 4)}: ${chunk.join(' ')}`);
  }
  return lines;
}

function humanSize(hexSize: string): string {
  const size = BigInt(hexSize);
  const units: [bigint, string][] = [
    [1n << 30n, 'GiB'],
    [1n << 20n, 'MiB'],
    [1n << 10n, 'KiB'],
  ];
  for (const [unit, name] of units)
    if (size >= unit && size % unit === 0n) return `${size / unit} ${name}`;
  return `${size} B`;
}

function capLine(cap: CapabilityDescription): string {
  const values = Object.entries(cap.value).map(
    ([k, v]) => `${k} ${typeof v === 'object' ? JSON.stringify(v) : v}`,
  );
  const body = values.length > 0 ? `: ${values.join(', ')}` : '';
  return `      cap ${cap.name} (id ${cap.id}) v${cap.version} @${cap.offset} next ${cap.next}${body}`;
}

function regionLines(r: RegionDescriptionOut, options: TextOptions): string[] {
  const head = `  ${String(r.index).padStart(2)} ${r.name.padEnd(13)}`;
  if (r.error) return [`${head}${r.error.message}`];
  const lines = [
    `${head}flags ${(r.flagNames ?? '').padEnd(21)} size ${r.size} (${humanSize(r.size ?? '0x0')})  offset ${r.offset}  argsz ${r.argsz} cap_offset ${r.capOffset}`,
  ];
  for (const cap of r.caps ?? []) lines.push(capLine(cap));
  if (options.hex && r.hex) lines.push(...hexdump(r.hex, '      '));
  return lines;
}

function configLines(d: DeviceDescription, options: TextOptions): string[] {
  const c = d.config;
  const pin = c.interruptPin ? `INT${String.fromCharCode(0x40 + c.interruptPin)}` : 'none';
  const lines = [
    `config space (${c.size} bytes):`,
    `  ${c.vendor.slice(2)}:${c.device.slice(2)} class ${c.classCode.slice(2)} rev ${c.revision.slice(2)} subsystem ${c.subsystemVendor.slice(2)}:${c.subsystemDevice.slice(2)} header ${c.headerType} pin ${pin}`,
    `  command ${c.command} status ${c.status}`,
  ];
  for (const b of c.bars) {
    const kind =
      b.type === 'io'
        ? 'I/O'
        : `${b.type === 'mem64' ? '64-bit' : '32-bit'} ${b.prefetchable ? 'prefetchable' : 'non-prefetchable'}`;
    lines.push(
      `  BAR${b.index} ${kind.padEnd(24)} size ${b.size} (${humanSize(b.size)})  register ${b.register}`,
    );
  }
  const bytes = Buffer.from(c.hex, 'hex');
  lines.push('  as lspci -vvv decodes it (pciutils 3.9.0):');
  lines.push(...commandStatusLines(Number(c.command), Number(c.status)));
  for (const cap of decodePciCapabilities(bytes)) lines.push(...cap.lines);
  if (options.hex) {
    // lspci -F reads this block back: a `DDDD:BB:DD.F ` line, then `xx: ` byte lines.
    lines.push(`  as lspci -xxx dumps it:`, `${d.name} ${d.model}`, ...lspciHexLines(bytes, false));
  }
  return lines;
}

/** The whole description as lines. */
export function describeAsText(d: DeviceDescription, options: TextOptions = {}): string[] {
  const lines = [
    `${d.name}  ${d.model}`,
    `device info: flags ${d.info.flagNames}, ${d.info.numRegions} regions, ${d.info.numIrqs} IRQ indexes`,
    'regions:',
  ];
  for (const r of d.regions) lines.push(...regionLines(r, options));
  lines.push('irqs:');
  for (const i of d.irqs) {
    const body = i.error ? i.error.message : `count ${i.count}  flags ${i.flagNames}`;
    lines.push(`  ${i.index} ${i.name.padEnd(6)} ${body}`);
  }
  lines.push(...configLines(d, options));
  return lines;
}
