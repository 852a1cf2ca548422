#!/usr/bin/env python3
"""A hostile vfio-user server for the client's tests (vfio-user.rst), in plain Python: a small
plausible PCI device (9 regions, 5 IRQ indexes, a 256-byte config space of an NVIDIA GPU, BAR0
of 4 KiB, region 9 a 16 KiB memfd with an NVLink2 RAM TYPE capability) whose replies one
scenario each falsifies: counts, argsz, capability chains, sparse areas, fd sizes, read replies,
VERSION capabilities.

Usage: hostile_server.py DIR SCENARIO...  listens on DIR/SCENARIO.sock for each scenario,
prints "ready" once all listen, serves any number of connections (a thread each), and after
each connection prints one JSON line {"scenario", "requests", "peakKb"}: the requests it got
and the highest VmHWM of the peer process (SO_PEERCRED pid, /proc/PID/status) seen at any of
them. A connection is cut after MAX_REQUESTS requests, so a client that loops on what it is
told ends in bounded time. Runs until killed."""
import json, os, socket, struct, sys, threading

HDR = struct.Struct('<HHIII')
VERSION, GET_INFO, GET_REGION_INFO, GET_IRQ_INFO, SET_IRQS = 1, 4, 5, 7, 8
REGION_READ, REGION_WRITE, DMA_MAP, DMA_UNMAP, RESET = 9, 10, 2, 3, 13
REPLY, NO_REPLY, ERROR = 1, 0x10, 0x20
EINVAL = 22
READ, WRITE, MMAP, CAPS = 1, 2, 4, 8
CAP_SPARSE, CAP_TYPE = 1, 2
MAX_REQUESTS = int(os.environ.get("HOSTILE_MAX_REQUESTS", "300"))
MEMFD_SIZE = 0x4000

lock = threading.Lock()
MUTE = object()  # an answer never sent

class Stall:
    """A reply header promising `size` payload bytes, 10 of them, then nothing."""

    def __init__(self, size):
        self.size = size

config = bytearray(256)
config[0:4] = struct.pack('<HH', 0x10de, 0x1db1)
config[8:12] = struct.pack('<I', 0x03020000 | 0xa1)


def fixed(argsz, flags, index, cap_offset, size, offset=0):
    return struct.pack('<IIIIQQ', argsz, flags, index, cap_offset, size, offset)


def cap(cap_id, nxt, body, version=1):
    return struct.pack('<HHI', cap_id, version, nxt) + body


def with_chain(argsz, flags, index, size, chain, offset=0):
    """The kernel's argsz rule (vfio_pci_ioctl): the chain when it fits, else the size needed."""
    need = 32 + len(chain)
    if argsz < need:
        return fixed(need, flags | CAPS, index, 0, size, offset)
    return fixed(argsz, flags | CAPS, index, 32, size, offset) + chain


def sparse_chain(areas):
    body = struct.pack('<II', len(areas), 0) + b''.join(struct.pack('<QQ', o, s) for o, s in areas)
    return cap(CAP_SPARSE, 0, body)


def ram_type_chain(nxt=0):
    return cap(CAP_TYPE, nxt, struct.pack('<II', 0x800010de, 1))


class Device:
    """The honest device; scenarios override its answers."""

    def __init__(self, conn):
        self.conn = conn
        self.memfd = os.memfd_create('hostile-region9', 0)
        os.ftruncate(self.memfd, MEMFD_SIZE)
        self.region_asks = {}

    def close(self):
        os.close(self.memfd)

    def caps_json(self):
        return {'max_msg_fds': 8, 'max_data_xfer_size': 1 << 20}

    def version(self, major, minor):
        text = json.dumps({'capabilities': self.caps_json()}, separators=(',', ':'))
        return struct.pack('<HH', major, 0) + text.encode() + b'\0'

    def device_info(self):
        return struct.pack('<IIII', 16, 3, 10, 5)

    def region_info(self, index, argsz):
        """(payload, fds)"""
        if index == 0:
            return fixed(32, READ | WRITE, 0, 0, 0x1000), []
        if index == 7:
            return fixed(32, READ | WRITE, 7, 0, len(config)), []
        if index == 9:
            return self.region9(argsz, ram_type_chain(), MEMFD_SIZE), [self.memfd]
        return fixed(32, 0, index, 0, 0), []

    def region9(self, argsz, chain, size, offset=0):
        return with_chain(argsz, READ | WRITE | MMAP, 9, size, chain, offset)

    def irq_info(self, index):
        return struct.pack('<IIII', 16, 0x7 if index < 3 else 0, index, 1 if index < 3 else 0)

    def region_write(self, head):
        return head

    def region_read(self, offset, index, count):
        if index == 7:
            if offset + count > len(config):
                return None
            return struct.pack('<QII', offset, index, count) + bytes(config[offset:offset + count])
        if index == 0 and offset + count <= 0x1000:
            return struct.pack('<QII', offset, index, count) + bytes(count)
        return None


def region0(need, make):
    """A region_info whose region 0 asks for `need` bytes, then answers make(argsz)."""

    def region_info(self, index, argsz):
        if index != 0:
            return Device.region_info(self, index, argsz)
        if argsz < need:
            return fixed(need, READ | CAPS, 0, 0, 0x1000), []
        return make(argsz), []

    return region_info


def scenario_class(name):
    """The Device subclass that lies the way `name` says."""

    class Hostile(Device):
        pass

    d = Hostile
    if name == 'regions-4g':
        d.device_info = lambda self: struct.pack('<IIII', 16, 3, 0xffffffff, 5)
    elif name == 'irqs-4g':
        d.device_info = lambda self: struct.pack('<IIII', 16, 3, 10, 0xffffffff)
    elif name == 'info-1m':
        d.device_info = lambda self: struct.pack('<IIII', 16, 3, 10, 5) + bytes(1 << 20)
    elif name == 'argsz-4g':
        d.region_info = lambda self, i, a: (
            (fixed(0xffffffff, READ | CAPS, 0, 0, 0x1000), []) if i == 0 else Device.region_info(self, i, a))
    elif name == 'argsz-again':
        # Each answer asks for 32 more bytes than the request had.
        d.region_info = lambda self, i, a: (
            (fixed(a + 32, READ | CAPS, 0, 0, 0x1000), []) if i == 0 else Device.region_info(self, i, a))
    elif name == 'reply-over-argsz':
        d.region_info = lambda self, i, a: (
            (fixed(32, READ, 0, 0, 0x1000) + bytes(4096), []) if i == 0 else Device.region_info(self, i, a))
    elif name == 'cap-loop':
        chain = cap(CAP_TYPE, 32, struct.pack('<II', 1, 1))  # next points at itself
        d.region_info = lambda self, i, a: (
            (with_chain(a, READ, 0, 0x1000, chain), []) if i == 0 else Device.region_info(self, i, a))
    elif name == 'cap-past-end':
        d.region_info = region0(48, lambda a: fixed(a, READ | CAPS, 0, 1000, 0x1000) + bytes(16))
    elif name == 'cap-in-header':
        d.region_info = region0(64, lambda a: fixed(a, READ | CAPS, 0, 8, 0x1000) + bytes(32))
    elif name == 'cap-backward':
        # Headers every 8 bytes from the end back to 32, each `next` the one before it: a walk
        # that keeps each header's body "up to the end" holds n²/16 bytes.
        n = 4096
        body = bytearray(n - 32)
        for at in range(n - 8, 31, -8):
            struct.pack_into('<HHI', body, at - 32, CAP_TYPE, 1, at - 8 if at > 32 else 0)
        d.region_info = region0(n, lambda a: fixed(a, READ | CAPS, 0, n - 8, 0x1000) + bytes(body))
    elif name == 'index-mismatch':
        d.region_info = lambda self, i, a: (
            (fixed(32, READ | WRITE, 5, 0, 0x1000), []) if i == 0 else Device.region_info(self, i, a))
    elif name == 'config-4g':
        d.region_info = lambda self, i, a: (
            (fixed(32, READ | WRITE, 7, 0, 1 << 32), []) if i == 7 else Device.region_info(self, i, a))
    elif name == 'read-long':
        d.region_read = lambda self, o, i, c: struct.pack('<QII', o, i, c + 64) + bytes(c + 64)
    elif name == 'read-short':
        d.region_read = lambda self, o, i, c: struct.pack('<QII', o, i, c // 2) + bytes(c // 2)
    elif name == 'read-elsewhere':
        d.region_read = lambda self, o, i, c: struct.pack('<QII', o + 0x100, i, c) + bytes(c)
    elif name == 'fds-4g':
        d.caps_json = lambda self: {'max_msg_fds': 1 << 40, 'max_data_xfer_size': 1 << 20}
    elif name == 'xfer-0':
        d.caps_json = lambda self: {'max_msg_fds': 8, 'max_data_xfer_size': 0}
    elif name == 'xfer-1t':
        d.caps_json = lambda self: {'max_msg_fds': 8, 'max_data_xfer_size': 1 << 40}
    elif name == 'dma-maps-1t':
        d.caps_json = lambda self: {'max_dma_maps': 1 << 40}
    elif name == 'pgsizes-odd':
        d.caps_json = lambda self: {'pgsizes': 4095}
    elif name == 'caps-not-object':
        d.version = lambda self, ma, mi: struct.pack('<HH', ma, 0) + b'{"capabilities":5}\0'
    elif name == 'caps-newline':
        d.version = lambda self, ma, mi: struct.pack('<HH', ma, 0) + b'{"capabilities":\n}\0'
    elif name == 'version-64k':
        big = json.dumps({'capabilities': {'max_msg_fds': 8, 'x': 'y' * (1 << 16)}})
        d.version = lambda self, ma, mi: struct.pack('<HH', ma, 0) + big.encode() + b'\0'
    elif name == 'version-deep':
        deep = '{"capabilities":{"x":' + '[' * 1500 + ']' * 1500 + '}}'
        d.version = lambda self, ma, mi: struct.pack('<HH', ma, 0) + deep.encode() + b'\0'
    elif name == 'sparse-outside':
        d.region_info = lambda self, i, a: (
            (self.region9(a, sparse_chain([(0x3000, 0x2000)]), MEMFD_SIZE), [self.memfd])
            if i == 9 else Device.region_info(self, i, a))
    elif name == 'sparse-many':
        areas = [(i * 16, 8) for i in range(1000)]
        d.region_info = lambda self, i, a: (
            (self.region9(a, sparse_chain(areas), MEMFD_SIZE), [self.memfd])
            if i == 9 else Device.region_info(self, i, a))
    elif name == 'fd-short':
        # Region 9 claims 16 GiB, its memfd holds 16 KiB: touching past it would be SIGBUS.
        d.region_info = lambda self, i, a: (
            (self.region9(a, ram_type_chain(), 1 << 34), [self.memfd])
            if i == 9 else Device.region_info(self, i, a))
    elif name == 'fd-offset-past':
        d.region_info = lambda self, i, a: (
            (self.region9(a, ram_type_chain(), MEMFD_SIZE, offset=1 << 62), [self.memfd])
            if i == 9 else Device.region_info(self, i, a))
    elif name == 'irq-index':
        d.irq_info = lambda self, i: struct.pack('<IIII', 16, 0x7, i + 1, 1)
    elif name == 'write-short':
        d.region_write = lambda self, head: head[:12] + struct.pack('<I', struct.unpack_from('<I', head, 12)[0] // 2)
    elif name == 'mute':
        d.device_info = lambda self: MUTE
    elif name == 'stall-mid-reply':
        d.region_read = lambda self, o, i, c: Stall(16 + c)
    elif name != 'benign':
        raise SystemExit(f'unknown scenario {name}')
    return d


def recv_exact(conn, n):
    data = b''
    while len(data) < n:
        chunk, fds, _flags, _addr = socket.recv_fds(conn, n - len(data), 16)
        for fd in fds:
            os.close(fd)
        if not chunk:
            return None
        data += chunk
    return data


def peer_hwm_kb(conn):
    pid = struct.unpack('3i', conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[0]
    try:
        with open(f'/proc/{pid}/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def answer(dev, cmd, body):
    """(payload, fds), or None for an EINVAL error reply."""
    if cmd == VERSION:
        major, minor = struct.unpack_from('<HH', body)
        return dev.version(major, minor), []
    if cmd == GET_INFO:
        info = dev.device_info()
        return info if info is MUTE else (info, [])
    if cmd == GET_REGION_INFO:
        argsz, _flags, index = struct.unpack_from('<III', body)
        return dev.region_info(index, argsz)
    if cmd == GET_IRQ_INFO:
        index = struct.unpack_from('<I', body, 8)[0]
        return dev.irq_info(index), []
    if cmd == REGION_READ:
        offset, index, count = struct.unpack_from('<QII', body)
        payload = dev.region_read(offset, index, count)
        return payload if payload is None or isinstance(payload, Stall) else (payload, [])
    if cmd == REGION_WRITE:
        return dev.region_write(body[:16]), []
    if cmd in (DMA_MAP, SET_IRQS, RESET):
        return b'', []
    if cmd == DMA_UNMAP:
        return body[:24], []
    return None


def serve(conn, name, cls):
    dev = cls(conn)
    requests, peak = 0, 0
    try:
        while requests < MAX_REQUESTS:
            head = recv_exact(conn, 16)
            if head is None:
                break
            msg_id, cmd, size, flags, _err = HDR.unpack(head)
            body = recv_exact(conn, size - 16) if size > 16 else b''
            if body is None:
                break
            requests += 1
            peak = max(peak, peer_hwm_kb(conn))
            if flags & 0xf == REPLY or flags & NO_REPLY:
                continue
            out = answer(dev, cmd, body)
            if out is MUTE:
                continue
            if isinstance(out, Stall):
                conn.sendall(HDR.pack(msg_id, cmd, 16 + out.size, REPLY, 0) + bytes(10))
                continue
            if out is None:
                conn.sendall(HDR.pack(msg_id, cmd, 16, REPLY | ERROR, EINVAL))
                continue
            payload, fds = out
            data = HDR.pack(msg_id, cmd, 16 + len(payload), REPLY, 0) + payload
            if fds:
                socket.send_fds(conn, [data], fds)
            else:
                conn.sendall(data)
    except OSError:
        pass
    finally:
        conn.close()
        dev.close()
        with lock:
            print(json.dumps({'scenario': name, 'requests': requests, 'peakKb': peak}), flush=True)


def listen(path, name, cls):
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(8)

    def loop():
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=serve, args=(conn, name, cls), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()


def main():
    directory, names = sys.argv[1], sys.argv[2:]
    for name in names:
        listen(os.path.join(directory, f'{name}.sock'), name, scenario_class(name))
    with lock:
        print('ready', flush=True)
    threading.Event().wait()


main()
