/**
 * memfd, MAP_SHARED windows and sparse-file data ranges: a 128 GiB memfd costs nothing until
 * touched, SEEK_DATA reports exactly the touched pages, windows split accesses at their edges.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, fstatSync, openSync, readdirSync, writeSync } from 'node:fs';
import { test } from 'node:test';
import { PYTHON } from '../../test/support/native/python.ts';
import {
  addFileSeals,
  closeFd,
  dataRanges,
  FileSeal,
  fileSeals,
  ftruncate,
  heldElsewhere,
  memfdCreate,
  mmap,
  munmap,
  NativeConstant,
  pageSize,
  punchHole,
  SharedMapping,
} from './index.ts';

const GiB = 1n << 30n;

test('a 128 GiB memfd is sparse; dataRanges lists exactly the pages touched through a mapping', () => {
  const size = 128n * GiB;
  const fd = memfdCreate('gpu-ram', size);
  try {
    const st = fstatSync(fd, { bigint: true });
    assert.equal(st.size, size);
    assert.equal(st.blocks, 0n);
    assert.deepEqual(dataRanges(fd, 0n, size), []);
    const page = BigInt(pageSize());
    const at = 100n * GiB + 3n * page;
    const m = mmap(fd, at, Number(page), 'rw');
    new Uint8Array(m.buffer)[1] = 0xa5;
    munmap(m.buffer);
    assert.deepEqual(dataRanges(fd, 0n, size), [[at, at + page]]);
    assert.deepEqual(dataRanges(fd, at + 1n, at + 2n), [[at + 1n, at + 2n]]);
    assert.ok(fstatSync(fd, { bigint: true }).blocks <= 64n);
    punchHole(fd, at, page);
    assert.deepEqual(dataRanges(fd, 0n, size), []);
  } finally {
    closeFd(fd);
  }
});

test('munmap detaches the buffer and is idempotent', () => {
  const fd = memfdCreate('detach', 4096n);
  const m = mmap(fd, 0n, 4096, 'rw');
  assert.equal(m.buffer.byteLength, 4096);
  assert.ok(m.address > 0n);
  munmap(m.buffer);
  assert.equal(m.buffer.byteLength, 0);
  munmap(m.buffer);
  closeFd(fd);
});

test('mmap rejects misaligned offsets, zero and over-4 GiB lengths with EINVAL', () => {
  const fd = memfdCreate('bad', 8n * GiB);
  assert.throws(() => mmap(fd, 1n, 4096, 'r'), { code: 'EINVAL', syscall: 'mmap' });
  assert.throws(() => mmap(fd, 0n, 0, 'r'), { code: 'EINVAL' });
  assert.throws(() => mmap(fd, 0n, 2 ** 32 + 4096, 'r'), { code: 'EINVAL' });
  closeFd(fd);
});

test('a SharedMapping splits reads and writes at window edges', () => {
  const page = BigInt(pageSize());
  const fd = memfdCreate('windows', 5n * page);
  const map = SharedMapping.map(fd, 0n, 5n * page, 'rw', 2n * page);
  try {
    assert.equal(map.windows.length, 3);
    const data = Uint8Array.from({ length: Number(3n * page) }, (_, i) => (i * 7) & 0xff);
    map.write(page - 5n, data);
    assert.deepEqual(map.read(page - 5n, data.length), data);
    const other = SharedMapping.map(fd, page, 4n * page, 'r');
    assert.deepEqual(other.read(0n, 10), data.subarray(5, 15));
    assert.throws(() => other.write(0n, data), RangeError);
    assert.throws(() => map.read(5n * page - 1n, 2), RangeError);
    other.unmap();
  } finally {
    map.unmap();
    closeFd(fd);
  }
  assert.throws(() => map.read(0n, 1), RangeError);
});

test('a lazy SharedMapping maps a window on first access; view lends bytes within one window', () => {
  const page = BigInt(pageSize());
  const fd = memfdCreate('lazy', 5n * page);
  const map = SharedMapping.lazy(fd, 0n, 5n * page, 'rw', 2n * page);
  try {
    assert.equal(map.windows.length, 0);
    map.write(3n * page, Uint8Array.of(1, 2, 3));
    assert.deepEqual(
      map.windows.map((w) => w.start),
      [2n * page],
    );
    const view = map.view(3n * page, 3);
    assert.deepEqual(view, Uint8Array.of(1, 2, 3));
    map.write(3n * page, Uint8Array.of(7));
    assert.equal(view?.[0], 7, 'the view is the mapping itself');
    assert.equal(map.view(2n * page - 1n, 2), null, 'across a window edge');
    assert.throws(() => map.view(5n * page, 1), RangeError);
  } finally {
    map.unmap();
    closeFd(fd);
  }
  assert.throws(() => map.view(0n, 1), RangeError);
});

test('writing a view of a mapping onto the same range copies nothing and keeps the bytes', () => {
  const page = BigInt(pageSize());
  const fd = memfdCreate('self', 4n * page);
  const map = SharedMapping.lazy(fd, 0n, 4n * page, 'rw');
  try {
    const data = Uint8Array.from({ length: Number(2n * page) }, (_, i) => (i * 11) & 0xff);
    const view = map.view(page, data.length)!;
    view.set(data); // received in place
    map.write(page, view);
    assert.deepEqual(map.read(page, data.length), data);
    map.write(page + 1n, view.subarray(0, 10)); // an overlapping but shifted view still copies
    assert.deepEqual(map.read(page + 1n, 10), data.subarray(0, 10));
  } finally {
    map.unmap();
    closeFd(fd);
  }
});

test('a memfd is sealed at its size: ftruncate and writes past the end fail with EPERM', () => {
  const page = BigInt(pageSize());
  const fd = memfdCreate('sealed', 4n * page);
  try {
    assert.equal(fileSeals(fd), NativeConstant.MEMFD_SIZE_SEALS);
    assert.throws(() => ftruncate(fd, 0n), { code: 'EPERM', syscall: 'ftruncate' });
    assert.throws(() => ftruncate(fd, 8n * page), { code: 'EPERM' });
    assert.throws(() => writeSync(fd, Uint8Array.of(1), 0, 1, Number(4n * page)), {
      code: 'EPERM',
    });
    assert.equal(fstatSync(fd, { bigint: true }).size, 4n * page);
    // A punched hole is allowed and harmless: the page reads back as zeros, no SIGBUS.
    const m = SharedMapping.map(fd, 0n, 4n * page, 'rw');
    m.write(page, Uint8Array.of(0xaa));
    punchHole(fd, page, page);
    assert.deepEqual(m.read(page, 2), Uint8Array.of(0, 0));
    m.unmap();
  } finally {
    closeFd(fd);
  }
});

test('memfdCreate seals only what it is asked: { seals: 0 } is a file a client may resize and seal', () => {
  const page = BigInt(pageSize());
  const fd = memfdCreate('client', 4n * page, { seals: 0 });
  try {
    assert.equal(fileSeals(fd), 0);
    ftruncate(fd, 2n * page);
    assert.equal(fstatSync(fd, { bigint: true }).size, 2n * page);
    addFileSeals(fd, FileSeal.SHRINK);
    assert.equal(fileSeals(fd), FileSeal.SHRINK);
    assert.throws(() => ftruncate(fd, 0n), { code: 'EPERM' });
  } finally {
    closeFd(fd);
  }
  const some = memfdCreate('grow-sealed', page, { seals: FileSeal.GROW });
  try {
    assert.equal(fileSeals(some), FileSeal.GROW);
    ftruncate(some, 0n);
  } finally {
    closeFd(some);
  }
});

test('memfdCreate with seal bits the kernel does not know is EINVAL and leaves no fd open', () => {
  const open = () => readdirSync('/proc/self/fd').length;
  const before = open();
  assert.throws(() => memfdCreate('bad-seals', 4096n, { seals: 0x8000 }), { code: 'EINVAL' });
  assert.equal(open(), before);
});

test('heldElsewhere: any open file description but the one asked through, by a descriptor or only a mapping, read-only too', async () => {
  const fd = memfdCreate('leased', 1n << 20n);
  const reopen = (flags: string) => openSync(`/proc/self/fd/${fd}`, flags);
  const ours = reopen('r+'); // memfd_create's own description is not counted; this one is
  try {
    assert.equal(heldElsewhere(ours), false, 'ours alone');
    const peer = reopen('r+');
    assert.equal(heldElsewhere(ours), true, 'a second description');
    const m = mmap(peer, 0n, pageSize(), 'rw');
    closeSync(peer);
    assert.equal(heldElsewhere(ours), true, 'its descriptor closed, its mapping kept');
    munmap(m.buffer);
    assert.equal(heldElsewhere(ours), false, 'unmapped: gone');
    const readOnly = reopen('r');
    assert.equal(heldElsewhere(ours), true, 'one open read-only counts too (i_readcount)');
    closeSync(readOnly);
    assert.equal(heldElsewhere(ours), false);
    const own = mmap(fd, 0n, pageSize(), 'rw');
    assert.equal(heldElsewhere(ours), false, "a mapping of memfd_create's own description");
    munmap(own.buffer);
    assert.throws(() => heldElsewhere(1_000_000), /EBADF/);
  } finally {
    closeSync(ours);
    closeFd(fd);
  }
});

test('heldElsewhere survives opens of the file racing its lease (a broken lease signals SIGURG, not the fatal SIGIO)', () => {
  const fd = memfdCreate('lease-race', 1n << 20n);
  const ours = openSync(`/proc/self/fd/${fd}`, 'r+');
  // Another process opens and closes the file as fast as it can, as a backup of a state
  // directory or a look through /proc/<serve>/fd would.
  const code = `import os\np = '/proc/${process.pid}/fd/${ours}'\nwhile True:\n    os.close(os.open(p, os.O_RDONLY))`;
  const opener = spawn(PYTHON, ['-c', code], { stdio: 'ignore' });
  try {
    // Until the two raced both ways many times (bounded: the opener may be slow to start).
    let held = 0;
    let free = 0;
    for (let i = 0; i < 5_000_000 && (held < 2000 || free < 2000); i++) {
      if (heldElsewhere(ours)) held++;
      else free++;
    }
    assert.ok(held >= 2000 && free >= 2000, `held ${held} times, free ${free} times`);
    assert.equal(opener.exitCode, null, 'the opener ran throughout');
  } finally {
    opener.kill('SIGKILL');
    closeSync(ours);
    closeFd(fd);
  }
});
