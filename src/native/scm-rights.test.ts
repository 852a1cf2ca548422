/**
 * SCM_RIGHTS, peer credentials and eventfds across a real second process (python3, whose socket
 * module passes fds with send_fds/recv_fds): fds both ways, memfd contents seen through mmap on
 * the other side, an eventfd signalled by the child, truncated control data, close-on-exec.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import {
  openFds,
  receiveExactly,
  receiveOne,
  spawnPythonPeer,
  whenReadable,
} from '../../test/support/native/helpers.ts';
import { PYTHON } from '../../test/support/native/python.ts';
import {
  closeFd,
  Errno,
  eventfdCreate,
  eventfdRead,
  FdEvent,
  FdWatcher,
  fdFlags,
  memfdCreate,
  mmap,
  munmap,
  peerCredentials,
  sendMessage,
  socketPair,
} from './index.ts';

test('a memfd written by python is read back through mmap here; peer credentials name the child', async () => {
  const peer = await spawnPythonPeer(`
fd = os.memfd_create('from-python')
os.ftruncate(fd, 8192)
os.pwrite(fd, b'hello from python', 4096)
socket.send_fds(sock, [b'MEMF'], [fd])
sock.recv(1)
`);
  try {
    assert.equal(peerCredentials(peer.fd).pid, peer.child.pid);
    const r = await receiveOne(peer.fd, 64, 4);
    assert.equal(r.bytes.toString(), 'MEMF');
    assert.equal(r.truncatedControl, false);
    assert.equal(r.fds.length, 1);
    const fd = r.fds[0]!;
    assert.equal(fdFlags(fd).cloexec, true);
    const m = mmap(fd, 4096n, 4096, 'r');
    assert.equal(Buffer.from(m.buffer, 0, 17).toString(), 'hello from python');
    munmap(m.buffer);
    closeFd(fd);
    sendMessage(peer.fd, Buffer.from('k'));
    assert.equal((await peer.done).code, 0);
  } finally {
    peer.cleanup();
  }
});

test('a memfd written here through mmap is read by python through its own mmap', async () => {
  const peer = await spawnPythonPeer(`
msg, fds, flags, addr = socket.recv_fds(sock, 16, 4)
m = mmap.mmap(fds[0], 8192)
sock.sendall(m[4096:4096 + int(msg)])
`);
  try {
    const fd = memfdCreate('from-node', 8192n);
    const m = mmap(fd, 0n, 8192, 'rw');
    const text = Buffer.from('written through a shared mapping');
    new Uint8Array(m.buffer).set(text, 4096);
    assert.equal(sendMessage(peer.fd, Buffer.from(String(text.length)), [fd]), 2);
    const back = await receiveExactly(peer.fd, text.length);
    assert.deepEqual(back.bytes, text);
    munmap(m.buffer);
    closeFd(fd);
    assert.equal((await peer.done).code, 0);
  } finally {
    peer.cleanup();
  }
});

test('an eventfd sent to python is signalled from there and seen here', async () => {
  const peer = await spawnPythonPeer(`
msg, fds, flags, addr = socket.recv_fds(sock, 16, 4)
os.write(fds[0], struct.pack('=Q', 5))
`);
  try {
    const efd = eventfdCreate(0, { nonBlocking: true });
    assert.equal(eventfdRead(efd), null);
    sendMessage(peer.fd, Buffer.from('E'), [efd]);
    await whenReadable(efd);
    assert.equal(eventfdRead(efd), 5n);
    assert.equal(eventfdRead(efd), null);
    closeFd(efd);
    assert.equal((await peer.done).code, 0);
  } finally {
    peer.cleanup();
  }
});

test('more fds than the receiver allows: MSG_CTRUNC is reported and none leaks', async () => {
  const peer = await spawnPythonPeer(`
fds = [os.memfd_create('ctrunc-%d' % i) for i in range(4)]
socket.send_fds(sock, [b'FOUR'], fds)
sock.recv(1)
`);
  try {
    const before = openFds();
    const r = await receiveOne(peer.fd, 64, 2);
    assert.equal(r.bytes.toString(), 'FOUR');
    assert.equal(r.truncatedControl, true);
    assert.deepEqual(r.fds, []);
    const leaked = [...openFds()].filter(
      ([n, target]) => !before.has(n) && target.includes('ctrunc'),
    );
    assert.deepEqual(leaked, []);
    sendMessage(peer.fd, Buffer.from('k'));
    assert.equal((await peer.done).code, 0);
  } finally {
    peer.cleanup();
  }
});

test('fds the addon creates or receives do not reach a child process', async () => {
  const [a, b] = socketPair();
  const memfd = memfdCreate('leakcheck', 4096n);
  const efd = eventfdCreate();
  sendMessage(a, Buffer.from('x'), [memfd, efd]);
  const r = await receiveOne(b, 8, 4);
  assert.equal(r.fds.length, 2);
  for (const fd of [a, b, memfd, efd, ...r.fds])
    assert.equal(fdFlags(fd).cloexec, true, `fd ${fd}`);
  const child = spawnSync(
    PYTHON,
    [
      '-c',
      "import os\nfor n in os.listdir('/proc/self/fd'):\n  try: print(os.readlink('/proc/self/fd/' + n))\n  except OSError: pass",
    ],
    { encoding: 'utf8' },
  );
  assert.equal(child.status, 0);
  const ours = openFds();
  const targets = [a, b, memfd, efd, ...r.fds].map((fd) => ours.get(fd) ?? `fd ${fd}`);
  assert.ok(targets.some((t) => t.includes('leakcheck')));
  const seen = new Set(child.stdout.split('\n'));
  for (const t of targets) assert.equal(seen.has(t), false, `${t} leaked into the child`);
  for (const fd of [a, b, memfd, efd, ...r.fds]) closeFd(fd);
});

test('a full socket buffer makes sendMessage return 0, and the watcher reports writability', async () => {
  const [a, b] = socketPair();
  const chunk = Buffer.alloc(65536);
  let sent = 0;
  for (;;) {
    const n = sendMessage(a, chunk);
    if (n === 0) break;
    sent += n;
  }
  assert.ok(sent > 0);
  const writable = new Promise<number>((resolve) => {
    const w = new FdWatcher(a, FdEvent.WRITABLE, (_status, events) => {
      w.close();
      resolve(events);
    });
  });
  let drained = 0;
  while (drained < sent) {
    const r = await receiveOne(b, 1 << 20, 0);
    drained += r.bytes.length;
  }
  assert.equal((await writable) & FdEvent.WRITABLE, FdEvent.WRITABLE);
  closeFd(a);
  const eof = await receiveOne(b, 16, 0);
  assert.equal(eof.bytes.length, 0);
  closeFd(b);
});

test('system call failures carry code, errno and syscall', () => {
  const [a, b] = socketPair();
  closeFd(b);
  assert.throws(() => closeFd(b), { code: 'EBADF', errno: Errno.EBADF, syscall: 'close' });
  assert.throws(() => sendMessage(a, Buffer.from('x')), { code: 'EPIPE', syscall: 'sendmsg' });
  assert.throws(() => sendMessage(a, new Uint8Array(0), [a]), { code: 'EINVAL' });
  closeFd(a);
});
