/**
 * The addon against JS that misuses it: an object of one kind where another is expected (a
 * mapping where a watcher goes, a watcher where a mapping goes, a fast-path table where either
 * goes, plain objects, numbers) is a
 * TypeError (type tags, napi_check_object_type_tag), and an exception thrown while the addon
 * reads an argument (a getter on an array element) reaches the caller as that exception (every
 * N-API status checked). The misuse runs in a second process, plain node loading the same addon
 * file, so that the crash it was before is a failed assertion here, not a dead test runner.
 * Constants come from the C headers: checked against Node's own tables (os.constants).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { constants as fsConstants, readFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { describe, it } from 'node:test';
import { PYTHON } from '../../test/support/native/python.ts';
import {
  ADDON_CONSTANTS,
  ADDON_FUNCTIONS,
  ADDON_PATH,
  addon,
  addonLacks,
  ERRNO_NAMES,
} from './addon.ts';
import {
  closeFd,
  Errno,
  errnoName,
  eventfdCreate,
  FileSeal,
  fileSeals,
  memfdCreate,
  NativeConstant,
  receiveMessage,
  sendMessage,
  socketPair,
} from './index.ts';

/** Each case: [name, what it does with `a` (the addon), `m` (a mapping), `w` (a watcher)]. */
const MISUSE = String.raw`
const a = require(process.argv[1]);
const fd = a.memfdCreate('misuse', 4096n);
const m = a.mmap(fd, 0n, 4096n, true);
const [s0, s1] = a.socketPair();
const w = a.watchFd(s0, 0, () => {});
const scratch = new Uint8Array(64);
const control = new Int32Array(6);
const t = a.fastTable([{ region: 0, start: 0n, end: 4096n, writable: true, fd }], 64, null);
const throwingAt = (value) => {
  const arr = [value];
  Object.defineProperty(arr, 0, { get() { throw new RangeError('getter says no'); } });
  return arr;
};
const cases = {
  'watcherClose(mapping)': () => a.watcherClose(m.buffer),
  'watcherSet(mapping, 1)': () => a.watcherSet(m.buffer, 1),
  'watcherRef(mapping, true)': () => a.watcherRef(m.buffer, true),
  'watcherClose({})': () => a.watcherClose({}),
  'watcherClose(7)': () => a.watcherClose(7),
  'watcherClose(null)': () => a.watcherClose(null),
  'munmap(watcher)': () => a.munmap(w),
  'munmap(new ArrayBuffer(8))': () => a.munmap(new ArrayBuffer(8)),
  'munmap({})': () => a.munmap({}),
  'munmap("buffer")': () => a.munmap('buffer'),
  'sendMessage(data[0] getter throws)': () => a.sendMessage(s0, throwingAt(new Uint8Array(1)), []),
  'sendMessage(fds[0] getter throws)': () => a.sendMessage(s0, new Uint8Array(1), throwingAt(fd)),
  'watcherFast(mapping, ...)': () => a.watcherFast(m.buffer, null, scratch, control, 0),
  'watcherFast(w, mapping, ...)': () => a.watcherFast(w, m.buffer, scratch, control, 0),
  'watcherFast(w, {}, ...)': () => a.watcherFast(w, {}, scratch, control, 0),
  'watcherFast(w, table, scratch, Uint8Array)': () => a.watcherFast(w, t, scratch, scratch, 0),
  'watcherClose(table)': () => a.watcherClose(t),
  'munmap(table)': () => a.munmap(t),
  'fastTable(fd and bytes)': () => a.fastTable([{ region: 7, start: 0n, end: 4n, writable: false, fd, bytes: scratch }], 64, null),
  'fastTable(writable bytes)': () => a.fastTable([{ region: 7, start: 0n, end: 4n, writable: true, bytes: scratch }], 64, null),
  'fastTable(ranges[0] getter throws)': () => a.fastTable(throwingAt({}), 64, null),
  'fastTable(tracing Uint8Array)': () => a.fastTable([], 64, scratch),
};
const out = {};
for (const [name, f] of Object.entries(cases)) {
  try {
    f();
    out[name] = 'returned';
  } catch (e) {
    out[name] = e.constructor.name + ': ' + e.message;
  }
}
// Both objects still work after all that: the mapping reads back, the watcher closes once.
new Uint8Array(m.buffer)[0] = 0x5a;
out.mappingStillWorks = new Uint8Array(m.buffer)[0] === 0x5a;
a.watcherClose(w);
a.munmap(m.buffer);
out.unmapped = m.buffer.byteLength === 0;
for (const f of [fd, s0, s1]) a.closeFd(f);
console.log(JSON.stringify(out));
`;

const WATCHER = 'TypeError: watcher must be a value returned by watchFd';
const MAPPING = 'TypeError: buffer must be an ArrayBuffer returned by mmap';
const TABLE = 'TypeError: table must be a value returned by fastTable';

describe('the addon refuses what it did not make, and checks every N-API status', () => {
  it('a mapping where a watcher goes (and the reverse, and plain values) is a TypeError', () => {
    const r = spawnSync(process.execPath, ['-e', MISUSE, ADDON_PATH], {
      encoding: 'utf8',
      timeout: 60_000,
      killSignal: 'SIGKILL',
    });
    assert.equal(r.error, undefined, String(r.error));
    assert.equal(r.signal, null, `the second process died of ${r.signal}:\n${r.stderr}`);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), {
      'watcherClose(mapping)': WATCHER,
      'watcherSet(mapping, 1)': WATCHER,
      'watcherRef(mapping, true)': WATCHER,
      'watcherClose({})': WATCHER,
      'watcherClose(7)': WATCHER,
      'watcherClose(null)': WATCHER,
      'munmap(watcher)': MAPPING,
      'munmap(new ArrayBuffer(8))': MAPPING,
      'munmap({})': MAPPING,
      'munmap("buffer")': MAPPING,
      'sendMessage(data[0] getter throws)': 'RangeError: getter says no',
      'sendMessage(fds[0] getter throws)': 'RangeError: getter says no',
      'watcherFast(mapping, ...)': WATCHER,
      'watcherFast(w, mapping, ...)': TABLE,
      'watcherFast(w, {}, ...)': TABLE,
      'watcherFast(w, table, scratch, Uint8Array)':
        'TypeError: control must be an Int32Array of 6 or more',
      'watcherClose(table)': WATCHER,
      'munmap(table)': MAPPING,
      'fastTable(fd and bytes)': 'TypeError: a range needs exactly one of fd and bytes',
      'fastTable(writable bytes)': 'TypeError: a bytes range must not be writable',
      'fastTable(ranges[0] getter throws)': 'RangeError: getter says no',
      'fastTable(tracing Uint8Array)': 'TypeError: tracing must be an Int32Array or null',
      mappingStillWorks: true,
      unmapped: true,
    });
  });
});

describe('an addon of older sources is known by what it lacks', () => {
  it('the built one lacks nothing; without any one member, that member is named', () => {
    const real = addon() as unknown as Record<string, unknown>;
    assert.equal(addonLacks(real), undefined);
    for (const name of ADDON_FUNCTIONS)
      assert.equal(addonLacks({ ...real, [name]: undefined }), name);
    for (const name of ADDON_CONSTANTS) {
      const constants = { ...(real.constants as object), [name]: undefined };
      assert.equal(addonLacks({ ...real, constants }), `constants.${name}`);
    }
    for (const name of ERRNO_NAMES) {
      const errno = { ...(real.errno as object), [name]: undefined };
      assert.equal(addonLacks({ ...real, errno }), `errno.${name}`);
    }
    // Every function the built addon exports is one NativeAddon declares, and checked.
    const exported = Object.keys(real).filter((k) => typeof real[k] === 'function');
    assert.deepEqual(exported.sort(), [...ADDON_FUNCTIONS].sort());
  });
});

describe('named constants come from the C headers', () => {
  it('every errno the addon names has the value Node knows for it (os.constants.errno)', () => {
    const node = osConstants.errno as Record<string, number | undefined>;
    for (const name of ERRNO_NAMES) {
      assert.equal(Errno[name], node[name], name);
      assert.equal(errnoName(Errno[name]), name);
    }
    assert.equal(errnoName(100_000), 'E100000');
  });

  it('a failing system call carries the errno Errno names', () => {
    const [a, b] = socketPair();
    closeFd(a);
    closeFd(b);
    assert.throws(() => closeFd(b), { code: 'EBADF', errno: Errno.EBADF, syscall: 'close' });
  });

  it('O_NONBLOCK is fs.constants.O_NONBLOCK; eventfd nonBlocking sets it', () => {
    assert.equal(NativeConstant.O_NONBLOCK, fsConstants.O_NONBLOCK);
    const fd = eventfdCreate(0, { nonBlocking: true });
    try {
      const flags = /flags:\s+([0-7]+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
      assert.ok(flags, 'fdinfo has flags');
      assert.ok(Number.parseInt(flags[1]!, 8) & NativeConstant.O_NONBLOCK);
    } finally {
      closeFd(fd);
    }
  });

  it("FileSeal is Python's fcntl.F_SEAL_*; seals added here read back there", () => {
    const fd = memfdCreate('seals', 4096n, { seals: FileSeal.SHRINK | FileSeal.GROW });
    try {
      const r = spawnSync(
        PYTHON,
        [
          '-c',
          'import fcntl, json; print(json.dumps([fcntl.F_SEAL_SEAL, fcntl.F_SEAL_SHRINK, ' +
            'fcntl.F_SEAL_GROW, fcntl.F_SEAL_WRITE, fcntl.fcntl(3, fcntl.F_GET_SEALS)]))',
        ],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe', fd], timeout: 60_000 },
      );
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout), [
        FileSeal.SEAL,
        FileSeal.SHRINK,
        FileSeal.GROW,
        FileSeal.WRITE,
        FileSeal.SHRINK | FileSeal.GROW,
      ]);
      assert.equal(fileSeals(fd), FileSeal.SHRINK | FileSeal.GROW);
    } finally {
      closeFd(fd);
    }
  });

  it('SCM_MAX_FD is the kernel cap: 253 fds go in one message, 254 are refused', () => {
    assert.equal(NativeConstant.SCM_MAX_FD, 253); // include/net/scm.h, not in any userspace header
    const [a, b] = socketPair();
    const efd = eventfdCreate();
    try {
      const fds = (n: number) => new Array<number>(n).fill(efd);
      assert.throws(() => sendMessage(a, new Uint8Array(1), fds(NativeConstant.SCM_MAX_FD + 1)), {
        code: 'EINVAL',
      });
      assert.equal(sendMessage(a, new Uint8Array(1), fds(NativeConstant.SCM_MAX_FD)), 1);
      const got = receiveMessage(b, 1, NativeConstant.SCM_MAX_FD);
      assert.equal(got?.fds.length, NativeConstant.SCM_MAX_FD);
      for (const fd of got?.fds ?? []) closeFd(fd);
    } finally {
      for (const fd of [a, b, efd]) closeFd(fd);
    }
  });
});
