#!/usr/bin/env python3
"""A guest that dies (the crash-cycle test kills it with SIGKILL once it printed "ready"):
connects to a GPU (argv[1]) and its NVLink bridge (argv[2]) like a VMM (vfio-user.rst), does
VERSION on both, maps the GPU RAM region (region 9) through the fd of its GET_REGION_INFO reply
and writes argv[3] (a u64) at offset 0x100 through the mapping, maps the bridge's ATSD
region, DMA_MAPs a memfd as guest RAM, assigns an eventfd to MSI-X vector 0 (SET_IRQS), then
prints "ready" and waits to be killed, holding everything."""
import mmap, os, socket, struct, sys

HDR = struct.Struct('<HHIII')
VERSION, DMA_MAP, GET_REGION_INFO, SET_IRQS = 1, 2, 5, 8
CAPS = b'{"capabilities":{"max_msg_fds":16,"max_data_xfer_size":1048576}}\0'


def recv_exact(sock, n, fds):
    data = b''
    while len(data) < n:
        chunk, got, _flags, _addr = socket.recv_fds(sock, n - len(data), 4)
        if not chunk:
            raise EOFError('server closed the connection')
        fds.extend(got)
        data += chunk
    return data


def request(sock, msg_id, command, payload=b'', send_fds=()):
    message = HDR.pack(msg_id, command, HDR.size + len(payload), 0, 0) + payload
    if send_fds:
        socket.send_fds(sock, [message], list(send_fds))
    else:
        sock.sendall(message)
    fds = []
    rid, rcmd, size, flags, errno = HDR.unpack(recv_exact(sock, HDR.size, fds))
    body = recv_exact(sock, size - HDR.size, fds) if size > HDR.size else b''
    if flags & 0x20:
        raise OSError(errno, f'command {command} failed')
    return body, fds


def open_device(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    request(sock, 1, VERSION, struct.pack('<HH', 0, 0) + CAPS)
    return sock


def map_region9(sock, argsz):
    """The first 64 KiB of region 9 (GPU RAM, or a bridge's whole ATSD region)."""
    body, fds = request(sock, 2, GET_REGION_INFO, struct.pack('<IIIIQQ', argsz, 0, 9, 0, 0, 0))
    _argsz, _flags, _index, _cap, _size, offset = struct.unpack_from('<IIIIQQ', body)
    return mmap.mmap(fds[0], 0x10000, offset=offset), fds[0]


def main():
    gpu = open_device(sys.argv[1])
    bridge = open_device(sys.argv[2])
    ram, _ram_fd = map_region9(gpu, 64)
    ram[0x100:0x108] = struct.pack('<Q', int(sys.argv[3]))
    atsd, _atsd_fd = map_region9(bridge, 80)
    guest = os.memfd_create('guest-ram')
    os.ftruncate(guest, 1 << 20)
    request(gpu, 3, DMA_MAP, struct.pack('<IIQQQ', 32, 3, 0, 0x1000_0000, 1 << 20), [guest])
    efd = os.eventfd(0, os.EFD_NONBLOCK)
    request(gpu, 4, SET_IRQS, struct.pack('<IIIII', 20, 0x24, 2, 0, 1), [efd])
    print('ready', flush=True)
    sys.stdin.read()  # never returns: the test kills this process


main()
