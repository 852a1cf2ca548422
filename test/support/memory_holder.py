#!/usr/bin/env python3
"""A client that keeps a device's memory after it disconnects (test/serve-held-memory.test.ts).
With --uid N first (root only) it becomes uid N (and gid N). Connects to argv[1] like a VMM (vfio-user.rst), VERSION, GET_REGION_INFO of region argv[2],
takes the fd of the reply; with argv[3] (a u64) maps the region's first 64 KiB through libc's
mmap (Python's mmap module would keep a descriptor of its own) and stores argv[3] at 0x100.
Then it closes the socket, prints "held <fd>" and follows stdin, one command per line, one line
of answer each:
  close-fd   closes its descriptor of the region             -> "closed"
  unmap      unmaps it                                       -> "unmapped"
  fork       a child keeps the fd and mapping, this process lets go of both -> "child <pid>"
  splice     splices the region's first page into a pipe it keeps -> "spliced"
  pipe       reads that page back from the pipe: 8 bytes at 0x100, hex -> "<hex>"
  reconnect [PATH]  connects again (to PATH if given) and does VERSION -> "ok" or "errno <n>"
  fill N     pwrites N MiB from the region's start, byte i of MiB k being (k + i) & 0xff -> "filled"
A child made by fork dies with this process (PR_SET_PDEATHSIG)."""
import ctypes, os, signal, socket, struct, sys

# The wire helpers of the other Python client (this directory is on sys.path); no
# __pycache__ written into the checkout.
sys.dont_write_bytecode = True
from vfio_user_client import GET_REGION_INFO, VERSION, request  # noqa: E402

CAPS = b'{"capabilities":{"max_msg_fds":16,"max_data_xfer_size":1048576}}\0'
LENGTH = 0x10000
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                      ctypes.c_long]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
PROT_RW, MAP_SHARED, PR_SET_PDEATHSIG = 3, 1, 1


def open_device(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    request(sock, 1, VERSION, struct.pack('<HH', 0, 0) + CAPS)
    return sock


def main():
    if sys.argv[1] == '--uid':
        uid = int(sys.argv[2])
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        del sys.argv[1:3]
    path, region = sys.argv[1], int(sys.argv[2])
    sock = open_device(path)
    body, fds = request(sock, 2, GET_REGION_INFO, struct.pack('<IIIIQQ', 80, 0, region, 0, 0, 0))
    offset = struct.unpack_from('<IIIIQQ', body)[5]
    fd = fds[0]
    address = None
    if len(sys.argv) > 3:
        address = libc.mmap(None, LENGTH, PROT_RW, MAP_SHARED, fd, offset)
        if address in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), 'mmap')
        ctypes.memmove(address + 0x100, struct.pack('<Q', int(sys.argv[3])), 8)
    sock.close()
    print(f'held {fd}', flush=True)
    pipe = None
    for line in sys.stdin:
        command = line.strip()
        if command == 'splice':
            pipe = os.pipe()
            os.splice(fd, pipe[1], 4096, offset_src=offset)
            print('spliced', flush=True)
        elif command == 'pipe':
            page = os.read(pipe[0], 4096)
            print(page[0x100:0x108].hex(), flush=True)
        elif command == 'close-fd':
            os.close(fd)
            print('closed', flush=True)
        elif command == 'unmap':
            libc.munmap(address, LENGTH)
            print('unmapped', flush=True)
        elif command == 'fork':
            child = os.fork()
            if child == 0:
                libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
                os.close(0)
                while True:
                    signal.pause()
            os.close(fd)
            if address is not None:
                libc.munmap(address, LENGTH)
            print(f'child {child}', flush=True)
        elif command.startswith('fill '):
            for k in range(int(command.split()[1])):
                chunk = bytes((k + j) & 0xff for j in range(256)) * 4096
                done = 0
                while done < len(chunk):
                    done += os.pwrite(fd, chunk[done:], offset + k * len(chunk) + done)
            print('filled', flush=True)
        elif command.startswith('reconnect'):
            try:
                open_device(command.split()[1] if ' ' in command else path).close()
                print('ok', flush=True)
            except OSError as e:
                print(f'errno {e.errno}', flush=True)


if __name__ == '__main__':
    main()
