#!/usr/bin/env python3
"""A second vfio-user implementation for the client tests (vfio-user.rst), in plain Python:
struct for layouts, socket.recv_fds/send_fds for SCM_RIGHTS, os.memfd_create for a mappable
region. Serves one connection on the socket path given as argv[1], then exits.

Regions: 0 = 4 KiB RAM (read/write, sparse-mmap cap over its second half, fd), 2 = 16 bytes
that record what a server-initiated DMA_READ returned, 7 = 256-byte config space, 9 = 16 KiB
memfd (mmap-able, no caps). DEVICE_FEATURE with flags 0xdead answers with a header whose size
is 8 (a framing error for the client)."""
import json, mmap, os, socket, struct, sys

HDR = struct.Struct('<HHIII')
VERSION, DMA_MAP, DMA_UNMAP, GET_INFO, GET_REGION_INFO = 1, 2, 3, 4, 5
GET_IRQ_INFO, SET_IRQS, REGION_READ, REGION_WRITE, DMA_READ, DMA_WRITE = 7, 8, 9, 10, 11, 12
RESET, WRITE_MULTI, FEATURE = 13, 15, 16
REPLY, NO_REPLY, ERROR = 1, 0x10, 0x20
EINVAL, EFAULT = 22, 14

memfd = os.memfd_create('vfio-user-server-region0', 0)
os.ftruncate(memfd, 0x1000 + 0x4000)
backing = mmap.mmap(memfd, 0x1000 + 0x4000)
config = bytearray(256)
config[0:4] = struct.pack('<HH', 0x10de, 0x1db1)
dma_result = bytearray(16)
eventfds = {}
dma_maps = []


def region_bytes(index):
    if index == 0:
        return memoryview(backing)[0:0x1000]
    if index == 9:
        return memoryview(backing)[0x1000:0x5000]
    if index == 2:
        return memoryview(dma_result)
    if index == 7:
        return memoryview(config)
    return None


def region_info(index, argsz):
    """(payload, fds) following the argsz rule."""
    if index == 0:
        cap = struct.pack('<HHIII', 1, 1, 0, 1, 0) + struct.pack('<QQ', 0x800, 0x800)
        needed = 32 + len(cap)
        if argsz < needed:
            return struct.pack('<IIIIQQ', needed, 0xf, 0, 0, 0x1000, 0), []
        return struct.pack('<IIIIQQ', needed, 0xf, 0, 32, 0x1000, 0) + cap, [memfd]
    if index == 9:
        return struct.pack('<IIIIQQ', 32, 0x7, 9, 0, 0x4000, 0x1000), [memfd]
    size = {2: 16, 7: 256}.get(index, 0)
    flags = 0x3 if size else 0
    return struct.pack('<IIIIQQ', 32, flags, index, 0, size, 0), []


class Peer:
    def __init__(self, sock):
        self.sock = sock
        self.next_id = 0x8000

    def recv_exact(self, n):
        data, fds = b'', []
        while len(data) < n:
            chunk, got, _flags, _addr = socket.recv_fds(self.sock, n - len(data), 16)
            if not chunk:
                return None, fds
            data += chunk
            fds += got
        return data, fds

    def send(self, msg_id, cmd, flags, payload=b'', fds=(), errno=0):
        data = HDR.pack(msg_id, cmd, 16 + len(payload), flags, errno) + payload
        if fds:
            socket.send_fds(self.sock, [data], list(fds))
        else:
            self.sock.sendall(data)

    def reply(self, hdr, payload=b'', fds=()):
        if not hdr[3] & NO_REPLY:
            self.send(hdr[0], hdr[1], REPLY, payload, fds)

    def error(self, hdr, errno):
        if not hdr[3] & NO_REPLY:
            self.send(hdr[0], hdr[1], REPLY | ERROR, errno=errno)

    def request(self, cmd, payload):
        msg_id = self.next_id
        self.next_id += 1
        self.send(msg_id, cmd, 0, payload)


def handle(peer, hdr, body, fds):
    cmd = hdr[1]
    if cmd == VERSION:
        major, minor = struct.unpack_from('<HH', body)
        text = body[4:-1].decode() if len(body) > 4 else ''
        if text:
            json.loads(text)
        caps = json.dumps({'capabilities': {'max_msg_fds': 8, 'max_data_xfer_size': 1 << 20}}, separators=(',', ':'))
        return peer.reply(hdr, struct.pack('<HH', major, 0) + caps.encode() + b'\0')
    if cmd == GET_INFO:
        return peer.reply(hdr, struct.pack('<IIII', 16, 3, 10, 5))
    if cmd == GET_REGION_INFO:
        argsz, _flags, index = struct.unpack_from('<III', body)
        payload, out_fds = region_info(index, argsz)
        return peer.reply(hdr, payload, out_fds)
    if cmd == GET_IRQ_INFO:
        _argsz, _flags, index, _count = struct.unpack('<IIII', body)
        return peer.reply(hdr, struct.pack('<IIII', 16, 0x9 if index == 2 else 0x7, index, 4 if index == 2 else 1))
    if cmd == SET_IRQS:
        argsz, flags, index, start, count = struct.unpack_from('<IIIII', body)
        for i, fd in enumerate(fds):
            eventfds[(index, start + i)] = fd
            os.write(fd, struct.pack('<Q', 1))  # raise each vector once so the client sees it
        return peer.reply(hdr)
    if cmd in (REGION_READ, REGION_WRITE):
        offset, index, count = struct.unpack_from('<QII', body)
        mem = region_bytes(index)
        if mem is None or offset + count > len(mem):
            return peer.error(hdr, EINVAL)
        if cmd == REGION_READ:
            return peer.reply(hdr, body[:16] + bytes(mem[offset:offset + count]))
        mem[offset:offset + count] = body[16:16 + count]
        return peer.reply(hdr, body[:16])
    if cmd == WRITE_MULTI:
        (n,) = struct.unpack_from('<Q', body)
        for i in range(n):
            offset, index, count = struct.unpack_from('<QII', body, 8 + 24 * i)
            data = body[8 + 24 * i + 16: 8 + 24 * i + 16 + count]
            region_bytes(index)[offset:offset + count] = data
        return peer.reply(hdr, struct.pack('<Q', n))
    if cmd == DMA_MAP:
        _argsz, flags, offset, addr, size = struct.unpack('<IIQQQ', body)
        dma_maps.append((addr, size, fds[0] if fds else None))
        peer.reply(hdr)
        if not fds:
            peer.request(DMA_WRITE, struct.pack('<QQ', addr + 8, 8) + b'PYTHON!!')
            peer.request(DMA_READ, struct.pack('<QQ', addr, 16))
        else:
            m = mmap.mmap(fds[0], size, offset=offset)
            m[0:8] = b'MAPPED!!'
            m.close()
        return None
    if cmd == DMA_UNMAP:
        return peer.reply(hdr, body)
    if cmd == RESET:
        config[4:6] = b'\0\0'
        return peer.reply(hdr)
    if cmd == FEATURE and struct.unpack_from('<I', body, 4)[0] == 0xdead:
        peer.sock.sendall(HDR.pack(hdr[0], hdr[1], 8, REPLY, 0))
        return None
    return peer.error(hdr, EINVAL)


def main():
    path = sys.argv[1]
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    print('ready', flush=True)
    conn, _ = listener.accept()
    peer = Peer(conn)
    while True:
        head, fds = peer.recv_exact(16)
        if head is None:
            break
        hdr = HDR.unpack(head)
        body, more = peer.recv_exact(hdr[2] - 16) if hdr[2] > 16 else (b'', [])
        fds += more
        if hdr[3] & 0xf == REPLY:
            if hdr[1] == DMA_READ and not hdr[3] & ERROR:
                dma_result[:] = body[16:32]
            continue
        handle(peer, hdr, body, fds)
    print('bye', flush=True)


main()
