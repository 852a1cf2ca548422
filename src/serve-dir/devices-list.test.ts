/**
 * devices.json as input: serve's own list reads back whole; anything else, down to one member
 * of one entry, is refused in one line naming the file, the entry and the member, whatever JSON
 * it holds; the file's size is bounded before it is read.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { VfioError } from '../vfio/index.ts';
import {
  DEVICES_LIST_MAX_BYTES,
  DEVICES_LIST_MAX_ENTRIES,
  type DevicesListEntry,
  devicesListEntry,
  parseDevicesList,
  readDevicesList,
  servedDevices,
} from './devices-list.ts';

const PATH = '/run/x/devices.json';
/** Every member of an entry but `socket`, which only served functions have. */
const REQUIRED = [
  'address',
  'vendor',
  'device',
  'role',
  'iommuGroup',
  'result',
  'errno',
  'reason',
] as const;

describe('devices.json', () => {
  const dir = mkdtempSync(join(tmpdir(), 'devices-list-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  const GPU: DevicesListEntry = {
    address: '0002:01:00.0',
    vendor: '0x10de',
    device: '0x1db1',
    role: 'gpu',
    iommuGroup: 3,
    socket: '/s/0002:01:00.0.sock',
    result: 'nvlink2',
    errno: null,
    reason: null,
  };
  const OTHER: DevicesListEntry = {
    address: '0000:00:00.0',
    vendor: '0x1014',
    device: '0x04c1',
    role: 'other',
    iommuGroup: 6,
    result: 'plain',
    errno: 'ENODEV',
    reason: 'no ibm,gpu',
  };
  /** GPU with `member` set to `value` (undefined: left out), as devices.json text. */
  const withMember = (member: string, value: unknown) =>
    JSON.stringify([{ ...GPU, [member]: value }]);

  it("serve's entries read back whole, in serve's order; unknown members are dropped", () => {
    const text = JSON.stringify([GPU, { ...OTHER, future: 1 }]);
    const entries = parseDevicesList(PATH, text);
    assert.deepEqual(entries, [GPU, OTHER]);
    assert.equal(JSON.stringify(entries), JSON.stringify([GPU, OTHER]));
    // The writer's layout: `socket` right after `iommuGroup`, only when served.
    const { socket, ...status } = GPU;
    assert.equal(JSON.stringify(devicesListEntry(status, socket)), JSON.stringify(GPU));
    assert.equal(JSON.stringify(devicesListEntry(OTHER)), JSON.stringify(OTHER));
  });

  it('a function in no IOMMU group (a root port: Linux 5.x builds none for it) reads back as null', () => {
    const rootPort = { ...OTHER, iommuGroup: null };
    assert.deepEqual(parseDevicesList(PATH, JSON.stringify([rootPort])), [rootPort]);
  });

  const bad: [string, string, RegExp][] = [
    ['{', 'not JSON', /^\/run\/x\/devices\.json: not JSON/],
    ['{"a":1}', 'an object', /must be an array of PCI functions, got an object/],
    ['[5]', 'a number entry', /entry 0 must be an object, got 5/],
    [withMember('address', 5), 'a number address', /entry 0: "address" must be a string, got 5/],
    [withMember('address', '2:1:0.0'), 'a short address', /"address" must be a PCI name/],
    [withMember('vendor', 4318), 'a number vendor', /"vendor" must be a PCI ID 0xNNNN, got 4318/],
    [
      withMember('device', undefined),
      'no device',
      /"device" must be a PCI ID 0xNNNN, got undefined/,
    ],
    [withMember('role', 'GPU'), 'an unknown role', /"role" must be one of gpu, bridge, other/],
    [withMember('role', 'toString'), 'a prototype role', /"role" must be one of/],
    [withMember('socket', ''), 'an empty socket', /entry 0: "socket" must be a path/],
    [withMember('iommuGroup', 1.5), 'a fractional group', /"iommuGroup" .* got 1\.5/],
    [withMember('iommuGroup', -1), 'a negative group', /"iommuGroup" .* got -1/],
    [withMember('iommuGroup', 'none'), 'a text group', /"iommuGroup" .* got "none"/],
    [
      withMember('result', 'ok'),
      'an unknown result',
      /"result" must be one of nvlink2, nvgrace, plain, error/,
    ],
    [withMember('errno', 19), 'a number errno', /"errno" must be an errno name or null, got 19/],
    [withMember('errno', 'enodev'), 'a lowercase errno', /"errno" must be an errno name or null/],
    [withMember('reason', undefined), 'no reason', /"reason" must be a string or null/],
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
            assert.ok(Number.isSafeInteger(e.iommuGroup));
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

  const hexId = fc
    .integer({ min: 0, max: 0xffff })
    .map((v) => `0x${v.toString(16).padStart(4, '0')}`);
  const entry = fc.record(
    {
      address: fc
        .tuple(fc.integer({ min: 0, max: 0xffffff }), fc.nat(255), fc.nat(31), fc.nat(7))
        .map(([d, b, s, f]) =>
          [
            d.toString(16).padStart(4, '0'),
            b.toString(16).padStart(2, '0'),
            `${s.toString(16).padStart(2, '0')}.${f}`,
          ].join(':'),
        ),
      vendor: hexId,
      device: hexId,
      role: fc.constantFrom('gpu', 'bridge', 'other'),
      iommuGroup: fc.nat(),
      socket: fc.string({ minLength: 1 }),
      result: fc.constantFrom('nvlink2', 'plain', 'error'),
      errno: fc.option(fc.constantFrom('ENODEV', 'EINVAL', 'ENOMEM')),
      reason: fc.option(fc.string()),
    },
    { requiredKeys: [...REQUIRED] },
  );

  it('any list serve could write reads back as written', () => {
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 6 }), (entries) => {
        const text = JSON.stringify(entries.map((e) => devicesListEntry(e, e.socket)));
        assert.equal(JSON.stringify(parseDevicesList(PATH, text)), text);
      }),
    );
  });

  it('one member of one entry replaced by a value of another kind: refused, naming both', () => {
    fc.assert(
      fc.property(
        fc.array(entry, { minLength: 1, maxLength: 4 }),
        fc.nat(),
        fc.constantFrom(...REQUIRED),
        fc.constantFrom<unknown>(true, [], {}, -1, 1.5),
        (entries, at, member, value) => {
          const i = at % entries.length;
          const list: Record<string, unknown>[] = entries.map((e) => ({ ...e }));
          list[i]![member] = value;
          assert.throws(
            () => parseDevicesList(PATH, JSON.stringify(list)),
            (e: unknown) =>
              e instanceof VfioError &&
              e.reason.startsWith(`${PATH}: entry ${i}: "${member}" must be`),
          );
        },
      ),
      {
        examples: [
          [
            [
              {
                address: '0000:00:00.0',
                vendor: '0x1014',
                device: '0x04ea',
                role: 'bridge',
                iommuGroup: 0,
                result: 'nvlink2',
                errno: null,
                reason: null,
              },
            ],
            0,
            'reason',
            -1,
          ],
        ],
      },
    );
  });

  it('served devices: entries with a socket; a relative path (not from serve) under the directory', () => {
    const d = join(dir, 'served');
    mkdirSync(d);
    writeFileSync(
      join(d, 'devices.json'),
      JSON.stringify([GPU, OTHER, { ...GPU, address: '0003:02:00.0', socket: 'b.sock' }]),
    );
    assert.deepEqual(servedDevices(d), [
      { address: GPU.address, socket: GPU.socket, iommuGroup: 3 },
      { address: '0003:02:00.0', socket: join(d, 'b.sock'), iommuGroup: 3 },
    ]);
  });

  it('a file over the size bound is refused by its size, unread', () => {
    const path = join(dir, 'big.json');
    writeFileSync(path, `[${' '.repeat(DEVICES_LIST_MAX_BYTES)}]`);
    assert.throws(() => readDevicesList(path), /bytes, at most 4194304/);
    const ok = join(dir, 'ok.json');
    writeFileSync(ok, JSON.stringify([OTHER]));
    assert.deepEqual(readDevicesList(ok), [OTHER]);
  });
});
