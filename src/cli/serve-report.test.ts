/**
 * serve's device table for as many functions as a tree can hold (two PHBs of 65,536 addresses
 * each): no argument spread of one value per row, which overflows the stack past ~125,000.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DevicesListEntry } from '../serve-dir/index.ts';
import { formatDeviceTable } from './serve-report.ts';

test('200,000 functions: one row each, columns as wide as their widest cell', () => {
  const entries: DevicesListEntry[] = Array.from({ length: 200_000 }, (_, i) => ({
    address: `${(i >> 16).toString(16).padStart(4, '0')}:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:00.${i & 7}`,
    vendor: '0x1234',
    device: '0x0001',
    role: 'other',
    iommuGroup: i,
    result: 'plain',
    errno: 'ENODEV',
    reason: 'no NVLink2 hook for vendor 0x1234',
    ...(i === 199_999 ? { socket: '/run/vn/0003:0d:00.7.sock' } : {}),
  }));
  const lines = formatDeviceTable(entries).split('\n');
  assert.equal(lines.length, 1 + 200_000);
  assert.equal(lines[0], 'ADDRESS       ID         ROLE   GROUP   RESULT          SOCKET');
  assert.equal(lines[1], '0000:00:00.0  1234:0001  other  0       plain (ENODEV)  -');
  assert.equal(
    lines.at(-1),
    '0003:0d:00.7  1234:0001  other  199999  plain (ENODEV)  /run/vn/0003:0d:00.7.sock',
  );
});
