/**
 * The descriptor a SharedMemory's peers get (reopenForPeer): the same sealed memfd, close-on-exec,
 * but an open file description of its own (status flags set on it do not reach ours; read
 * through /proc/self/fdinfo, a second path), whose going is seen (heldElsewhere).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  fstatSync,
  ftruncateSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import fc from 'fast-check';
import { PYTHON } from '../../test/support/native/python.ts';
import {
  closeFd,
  copyRange,
  dataRanges,
  fdFlags,
  fileSeals,
  heldElsewhere,
  memfdCreate,
  NativeConstant,
  SharedMapping,
  setNonBlocking,
} from '../native/index.ts';
import { openFileMemory } from './file-memory.ts';
import {
  copyPopulated,
  copyPopulatedLater,
  createMemfdMemory,
  PopulatedPages,
  reopenForPeer,
} from './shared-memory.ts';

/** fdinfo `flags:` (octal) of `fd` in this process. */
function fdinfoFlags(fd: number): number {
  const m = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
  return Number.parseInt(m?.[1] ?? 'x', 8);
}

it('peers get their own description of the sealed memfd, close-on-exec', () => {
  const m = createMemfdMemory('peer-description-test', 1n << 20n);
  const peer = reopenForPeer(m.fd, 'the test memory');
  try {
    assert.equal(readlinkSync(`/proc/self/fd/${peer}`), readlinkSync(`/proc/self/fd/${m.fd}`));
    assert.equal(fdFlags(peer).cloexec, true);
    assert.equal(fileSeals(peer), NativeConstant.MEMFD_SIZE_SEALS);
    setNonBlocking(peer, true); // what a peer may do to its descriptor
    assert.ok(fdinfoFlags(peer) & NativeConstant.O_NONBLOCK);
    assert.equal(fdinfoFlags(m.fd) & NativeConstant.O_NONBLOCK, 0, 'ours is untouched');
    assert.equal(heldElsewhere(m.fd), true, "the peer's description is seen");
    closeFd(peer);
    assert.equal(heldElsewhere(m.fd), false, 'and when it is gone');
    m.write(0n, Uint8Array.of(1, 2));
    const back = new Uint8Array(2);
    m.read(0n, back);
    assert.deepEqual(back, Uint8Array.of(1, 2));
  } finally {
    m.close();
  }
});

const ROOT = process.getuid?.() === 0;

it('the memfd is mode 0600: a peer of another uid maps its own description but cannot open another through /proc', {
  skip: !ROOT && 'needs root, to run a peer as uid 65534',
}, () => {
  const m = createMemfdMemory('peer-uid-test', 1n << 20n);
  const peer = reopenForPeer(m.fd, 'the test memory');
  try {
    assert.equal(fstatSync(m.fd).mode & 0o777, 0o600);
    const code = [
      'import mmap, os',
      "m = mmap.mmap(3, 4096); m[0:2] = b'ok'; m.close()",
      'try:',
      "    os.open('/proc/self/fd/3', os.O_RDONLY); print('opened')",
      'except PermissionError:',
      "    print('EACCES')",
    ].join('\n');
    const child = spawnSync(PYTHON, ['-c', code], {
      uid: 65534,
      gid: 65534,
      stdio: ['ignore', 'pipe', 'inherit', peer],
      timeout: 60_000, // bounded; nothing is measured
      encoding: 'utf8',
    });
    const status = child.status;
    const out = child.stdout;
    assert.equal(status, 0);
    assert.equal(out.trim(), 'EACCES');
    const back = new Uint8Array(2);
    m.read(0n, back);
    assert.deepEqual(Buffer.from(back).toString(), 'ok', 'its mapping wrote the memory');
  } finally {
    closeFd(peer);
    m.close();
  }
});

const MiB = 1 << 20;

it('classify learns the populated ranges lseek walks past (one walk, not one per MiB)', () => {
  const fd = memfdCreate('populated-learn-test', BigInt(16 * MiB));
  try {
    writeSync(fd, new Uint8Array(4 * MiB).fill(1), 0, 4 * MiB, 0);
    writeSync(fd, new Uint8Array(MiB).fill(2), 0, MiB, 8 * MiB);
    const p = new PopulatedPages(fd, BigInt(16 * MiB));
    assert.equal(p.classify(0n, BigInt(MiB)), 'populated');
    // Known from that one look: the rest of the first range and the range after the hole.
    assert.equal(p.known(BigInt(MiB), BigInt(4 * MiB)), true);
    assert.equal(p.known(BigInt(8 * MiB), BigInt(9 * MiB)), true);
    assert.equal(p.known(BigInt(4 * MiB), BigInt(5 * MiB)), false);
    assert.equal(p.classify(BigInt(5 * MiB), BigInt(6 * MiB)), 'hole');
    assert.equal(p.classify(BigInt(3 * MiB), BigInt(5 * MiB)), 'mixed');
  } finally {
    closeFd(fd);
  }
});

it('writes into holes (pwrite) and over populated pages (the mapping) read back through the fd and a mapping', () => {
  const m = createMemfdMemory('place-test', BigInt(4 * MiB));
  const map = SharedMapping.map(m.fd, 0n, BigInt(4 * MiB), 'r');
  try {
    const a = new Uint8Array(MiB).map((_, i) => i * 7);
    const b = new Uint8Array(MiB).map((_, i) => i * 13 + 1);
    m.write(BigInt(MiB), a); // a hole: pwrite
    assert.deepEqual(map.read(BigInt(MiB), MiB), a);
    m.write(BigInt(MiB), b); // known populated now: through the mapping
    const back = new Uint8Array(MiB);
    readSync(m.fd, back, 0, MiB, MiB);
    assert.deepEqual(back, b);
    assert.deepEqual(map.read(0n, MiB), new Uint8Array(MiB));
  } finally {
    map.unmap();
    m.close();
  }
});

it('clear(kept) zeros every byte outside kept (partial pages too), keeps the rest, read through the fd', () => {
  const size = 64n * 4096n;
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(Number(size) - 1), fc.integer({ min: 1, max: 3 * 4096 })), {
        maxLength: 6,
      }),
      fc.array(fc.tuple(fc.nat(Number(size)), fc.nat(3 * 4096)), { maxLength: 6 }),
      (writes, keeps) => {
        const m = createMemfdMemory('clear-kept-test', size);
        try {
          const want = new Uint8Array(Number(size));
          for (const [at, n] of writes) {
            const len = Math.min(n, Number(size) - at);
            const bytes = new Uint8Array(len).map((_, i) => 1 + ((at + i) % 251));
            m.write(BigInt(at), bytes);
            want.set(bytes, at);
          }
          // Sorted, disjoint: each range starts at or past the end of the one before.
          const kept: [bigint, bigint][] = [];
          let from = 0;
          for (const [gap, len] of keeps) {
            const a = Math.min(from + (gap % 40000), Number(size));
            const b = Math.min(a + len, Number(size));
            kept.push([BigInt(a), BigInt(b)]);
            from = b;
          }
          for (let i = 0; i < want.length; i++)
            if (!kept.some(([a, b]) => BigInt(i) >= a && BigInt(i) < b)) want[i] = 0;
          m.clear(kept);
          const got = new Uint8Array(Number(size));
          readSync(m.fd, got, 0, got.length, 0);
          assert.ok(Buffer.compare(got, want) === 0, 'bytes after clear(kept)');
        } finally {
          m.close();
        }
      },
    ),
    { numRuns: 60 },
  );
});

for (const [kind, make] of [
  ['a memfd', () => ({ m: createMemfdMemory('renew-test', 1n << 24n), dir: undefined })],
  [
    'a state directory file',
    () => {
      const dir = mkdtempSync(join(tmpdir(), 'shared-memory-renew-'));
      return { m: openFileMemory(join(dir, 'gpu.mem'), 'renew-test', 1n << 24n), dir };
    },
  ],
] as const) {
  it(`renew moves ${kind} to a fresh file under the same descriptor, holes kept; the old file keeps the old bytes`, () => {
    const { m, dir } = make();
    try {
      m.write(0x1000n, Uint8Array.of(1, 2, 3));
      m.write(0x800000n, Uint8Array.of(9));
      const before = m.dataRanges(0n, m.size);
      const old = reopenForPeer(m.fd, 'the old file'); // what a peer pinned stands for
      const fd = m.fd;
      const ino = fstatSync(fd).ino;
      m.renew?.();
      assert.equal(m.fd, fd, 'the same descriptor number');
      assert.notEqual(fstatSync(fd).ino, ino, 'a new file under it');
      assert.deepEqual(m.dataRanges(0n, m.size), before, 'the same pages populated, holes kept');
      const back = new Uint8Array(3);
      m.read(0x1000n, back);
      assert.deepEqual(back, Uint8Array.of(1, 2, 3));
      m.write(0x1000n, Uint8Array.of(7, 7, 7));
      const pinned = new Uint8Array(3);
      readSync(old, pinned, 0, 3, 0x1000);
      assert.deepEqual(pinned, Uint8Array.of(1, 2, 3), 'the old file did not see the new write');
      closeFd(old);
      assert.equal(heldElsewhere(m.fd), false, 'no description of the new file but ours');
      if (dir) assert.deepEqual(readdirSync(dir), ['gpu.mem'], 'renamed over, nothing left');
    } finally {
      m.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  });
  it(`renewLater copies ${kind} off the event loop, then commit swaps it in; a write meanwhile or a close drops the copy, nothing left`, async () => {
    const { m, dir } = make();
    try {
      // 9 MiB + 3 bytes populated: several copy steps (4 MiB), the last cut short.
      const data = new Uint8Array(9 * 1024 * 1024 + 3).map((_, i) => (i * 7 + 1) & 0xff);
      m.write(0x100000n, data);
      m.write(0xf00000n, Uint8Array.of(9));
      const before = m.dataRanges(0n, m.size);
      const fd = m.fd;
      const ino = fstatSync(fd).ino;
      let turns = 0; // the event loop ran meanwhile
      const ticking = setInterval(() => turns++, 0);
      const pending = await (m.renewLater?.() ?? Promise.resolve(null));
      clearInterval(ticking);
      assert.ok(pending !== null, 'a copy');
      assert.ok(turns > 0, 'the event loop turned during the copy');
      assert.equal(fstatSync(fd).ino, ino, 'nothing swapped before the commit');
      assert.equal(pending.commit(), true);
      assert.equal(m.fd, fd, 'the same descriptor number');
      assert.notEqual(fstatSync(fd).ino, ino, 'a new file under it');
      assert.deepEqual(m.dataRanges(0n, m.size), before, 'the same pages populated, holes kept');
      const back = new Uint8Array(data.length);
      m.read(0x100000n, back);
      assert.deepEqual(back, data, 'the same bytes read back');
      const raw = new Uint8Array(data.length);
      readSync(m.fd, raw, 0, raw.length, 0x100000); // through the descriptor a peer maps
      assert.deepEqual(raw, data);
      assert.equal(heldElsewhere(m.fd), false, 'no description of the new file but ours');
      if (dir) assert.deepEqual(readdirSync(dir), ['gpu.mem'], 'renamed over, nothing left');

      // A write by this server during the copy: the copy is dropped, the memory stays.
      const ino2 = fstatSync(fd).ino;
      const later = m.renewLater?.();
      m.write(0x100000n, Uint8Array.of(0xee));
      const stale = await later;
      assert.ok(stale != null);
      assert.equal(stale.commit(), false, 'written meanwhile: not swapped');
      assert.equal(fstatSync(fd).ino, ino2, 'the same file');
      const one = new Uint8Array(1);
      m.read(0x100000n, one);
      assert.equal(one[0], 0xee, 'the write kept');
      if (dir) assert.deepEqual(readdirSync(dir), ['gpu.mem'], 'the copy removed');

      // Closed during the copy: nothing left behind.
      const closing = m.renewLater?.();
      m.close();
      assert.equal(await closing, null);
      if (dir) assert.deepEqual(readdirSync(dir), ['gpu.mem'], 'the copy removed');
    } finally {
      m.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  });
}

/** A file of each kind the copies meet: a memfd, and a state directory's file (ext4 here). */
function makeFile(kind: 'memfd' | 'file', dir: string, name: string, size: bigint): number {
  if (kind === 'memfd') return memfdCreate(name, size);
  const fd = openSync(join(dir, name), 'w+', 0o600);
  ftruncateSync(fd, Number(size));
  return fd;
}

for (const [fromKind, toKind] of [
  ['memfd', 'memfd'],
  ['file', 'file'],
  ['memfd', 'file'], // two file systems: copy_file_range says EXDEV, pread/pwrite copy instead
] as const) {
  it(`copyPopulated and copyPopulatedLater, ${fromKind} to ${toKind}: the populated bytes at their offsets, holes kept; a file cut short leaves zeros`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'copy-populated-'));
    const size = 16n << 20n;
    const from = makeFile(fromKind, dir, 'from', size);
    const copies: number[] = [];
    try {
      // Three runs: one past a 4 MiB pread/pwrite step, one of a few bytes, one at the end.
      const runs: [number, Uint8Array][] = [
        [
          0x3000,
          Buffer.alloc(
            (5 << 20) + 5,
            Uint8Array.from({ length: 251 }, (_, i) => i),
          ),
        ],
        [12 << 20, Uint8Array.of(1, 2, 3)],
        [(16 << 20) - 4096, new Uint8Array(4096).fill(0xab)],
      ];
      for (const [at, bytes] of runs) writeSync(from, bytes, 0, bytes.length, at);
      const want = readWhole(from, size);
      for (const later of [false, true]) {
        const to = makeFile(toKind, dir, `to-${later}`, size);
        copies.push(to);
        if (later) assert.equal(await copyPopulatedLater(from, to, size, () => true), true);
        else copyPopulated(from, to, size);
        assert.ok(Buffer.compare(readWhole(to, size), want) === 0, `bytes (later: ${later})`);
        assert.deepEqual(dataRangesOf(to, size), dataRangesOf(from, size), 'holes kept');
      }
      if (fromKind !== toKind) {
        assert.throws(
          () => copyRange(from, copies[0] as number, 0n, 4096n),
          (e: unknown) => (e as { code?: string }).code === 'EXDEV',
          'copy_file_range between a memfd and an ext4 file',
        );
      }
      if (fromKind === 'file') {
        // A peer cuts the source inside its first run: what follows reads as zeros in the copy.
        ftruncateSync(from, 0x5000);
        ftruncateSync(from, Number(size));
        const cut = makeFile(toKind, dir, 'cut', size);
        copies.push(cut);
        copyPopulated(from, cut, size);
        const back = readWhole(cut, size);
        assert.ok(Buffer.compare(back.subarray(0, 0x5000), want.subarray(0, 0x5000)) === 0);
        const zeros = Buffer.alloc((12 << 20) - 0x5000);
        assert.ok(Buffer.compare(back.subarray(0x5000, 12 << 20), zeros) === 0, 'zeros past it');
      }
    } finally {
      closeFd(from);
      for (const fd of copies) closeFd(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

function readWhole(fd: number, size: bigint): Buffer {
  const out = Buffer.alloc(Number(size));
  readSync(fd, out, 0, out.length, 0);
  return out;
}

function dataRangesOf(fd: number, size: bigint): [bigint, bigint][] {
  return dataRanges(fd, 0n, size);
}
