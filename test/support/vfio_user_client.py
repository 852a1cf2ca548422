#!/usr/bin/env python3
"""A second vfio-user client implementation for the server tests (vfio-user.rst), in plain
Python: struct for layouts, socket.recv_fds for SCM_RIGHTS. Connects to argv[1] and runs
VERSION 0.0, DEVICE_GET_INFO, REGION_READ of the config space ID, and GET_REGION_INFO of
region 9 with argsz 64 (mapping the fd it brings and reading it); prints one JSON line with
what it saw. With --hold it then waits until stdin closes before disconnecting (so a test
can look at the server while this process holds the device)."""
import json, mmap, socket, struct, sys

HDR = struct.Struct('<HHIII')
VERSION, GET_INFO, GET_REGION_INFO, REGION_READ = 1, 4, 5, 9


def recv_exact(sock, n, fds):
    data = b''
    while len(data) < n:
        chunk, got, _flags, _addr = socket.recv_fds(sock, n - len(data), 4)
        if not chunk:
            raise EOFError('server closed the connection')
        fds.extend(got)
        data += chunk
    return data


def request(sock, msg_id, command, payload=b''):
    sock.sendall(HDR.pack(msg_id, command, HDR.size + len(payload), 0, 0) + payload)
    fds = []
    head = recv_exact(sock, HDR.size, fds)
    rid, rcmd, size, flags, errno = HDR.unpack(head)
    body = recv_exact(sock, size - HDR.size, fds) if size > HDR.size else b''
    assert rid == msg_id and rcmd == command, (rid, rcmd)
    if flags & 0x20:
        raise OSError(errno, f'command {command} failed')
    return body, fds


def main():
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(sys.argv[1])
    caps = b'{"capabilities":{"max_msg_fds":16,"max_data_xfer_size":1048576}}\0'
    body, _ = request(sock, 1, VERSION, struct.pack('<HH', 0, 0) + caps)
    major, minor = struct.unpack_from('<HH', body)
    server_caps = json.loads(body[4:].rstrip(b'\0'))['capabilities']
    body, _ = request(sock, 2, GET_INFO, struct.pack('<IIII', 16, 0, 0, 0))
    argsz, flags, num_regions, num_irqs = struct.unpack('<IIII', body)
    body, _ = request(sock, 3, REGION_READ, struct.pack('<QII', 0, 7, 4))
    offset, region, count = struct.unpack_from('<QII', body)
    vendor, device = struct.unpack_from('<HH', body, 16)
    body, fds = request(sock, 4, GET_REGION_INFO, struct.pack('<IIIIQQ', 64, 0, 9, 0, 0, 0))
    r_argsz, r_flags, r_index, r_cap, r_size, r_offset = struct.unpack_from('<IIIIQQ', body)
    mapped = None
    if fds:
        m = mmap.mmap(fds[0], 0x10000, offset=r_offset)
        mapped = m[0:8].hex()
        m.close()
    print(json.dumps({
        'version': [major, minor], 'maxMsgFds': server_caps.get('max_msg_fds'),
        'info': {'argsz': argsz, 'flags': flags, 'numRegions': num_regions, 'numIrqs': num_irqs},
        'read': {'count': count, 'vendor': vendor, 'device': device},
        'region9': {'argsz': r_argsz, 'flags': r_flags, 'size': r_size, 'fds': len(fds), 'first8': mapped},
    }), flush=True)
    if '--hold' in sys.argv:
        sys.stdin.read()
    sock.close()


if __name__ == '__main__':
    main()
