/**
 * devices.json as input: serve's own list reads back; anything else is refused in one line
 * naming the file (and the entry and member), whatever JSON it holds; the file's size is bounded
 * before it is read.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { VfioError } from '../vfio/index.ts';
import {
  DEVICES_LIST_MAX_BYTES,
  DEVICES_LIST_MAX_ENTRIES,
  parseDevicesList,
  readDevicesList,
} from './devices-list.ts';

const PATH = '/run/x/devices.json';

describe('devices.json', () => {
  const dir = mkdtempSync(join(tmpdir(), 'devices-list-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("serve's entries read back with the members a reader uses", () => {
    const text = JSON.stringify([
      { address: '0002:01:00.0', role: 'gpu', iommuGroup: 3, socket: '/s/0002:01:00.0.sock' },
      { address: '0000:00:00.0', role: 'other', iommuGroup: null },
    ]);
    assert.deepEqual(parseDevicesList(PATH, text), [
      { address: '0002:01:00.0', socket: '/s/0002:01:00.0.sock', iommuGroup: 3 },
      { address: '0000:00:00.0' },
    ]);
  });

  const bad: [string, string, RegExp][] = [
    ['{', 'not JSON', /^\/run\/x\/devices\.json: not JSON/],
    ['{"a":1}', 'an object', /must be an array of PCI functions, got an object/],
    ['[5]', 'a number entry', /entry 0 must be an object, got 5/],
    ['[{"address":5}]', 'a number address', /entry 0: "address" must be a string, got 5/],
    ['[{"address":"a","socket":""}]', 'an empty socket', /entry 0: "socket" must be a path/],
    ['[{"address":"a","iommuGroup":1.5}]', 'a fractional group', /"iommuGroup" .* got 1\.5/],
  ];
  for (const [text, name, what] of bad) {
    it(`refuses ${name}`, () => {
      assert.throws(
        () => parseDevicesList(PATH, text),
        (e: unknown) => e instanceof VfioError && e.code === 'EINVAL' && what.test(e.reason),
      );
    });
  }

  it(`refuses more than ${DEVICES_LIST_MAX_ENTRIES} entries before looking at them`, () => {
    const text = `[${Array(DEVICES_LIST_MAX_ENTRIES + 1)
      .fill('0')
      .join(',')}]`;
    assert.throws(() => parseDevicesList(PATH, text), /4097 entries, at most 4096/);
  });

  it('any JSON at all: entries of the right types, or one EINVAL line naming the file', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (value) => {
        const text = JSON.stringify(value) ?? 'null';
        try {
          for (const e of parseDevicesList(PATH, text)) {
            assert.equal(typeof e.address, 'string');
            if (e.socket !== undefined) assert.equal(typeof e.socket, 'string');
            if (e.iommuGroup !== undefined) assert.ok(Number.isSafeInteger(e.iommuGroup));
          }
        } catch (e) {
          assert.ok(e instanceof VfioError, String(e));
          assert.ok(e.reason.startsWith(`${PATH}: `));
          assert.ok(!e.message.includes('\n'));
          assert.ok(e.message.length < 300, e.message);
        }
      }),
    );
  });

  it('a file over the size bound is refused by its size, unread', () => {
    const path = join(dir, 'big.json');
    writeFileSync(path, `[${' '.repeat(DEVICES_LIST_MAX_BYTES)}]`);
    assert.throws(() => readDevicesList(path), /bytes, at most 4194304/);
    const ok = join(dir, 'ok.json');
    writeFileSync(ok, '[{"address":"0002:01:00.0"}]');
    assert.deepEqual(readDevicesList(ok), [{ address: '0002:01:00.0' }]);
  });
});
