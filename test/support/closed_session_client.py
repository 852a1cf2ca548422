#!/usr/bin/env python3
"""A client whose replies fail while messages of it are still queued (vfio-user.rst
"Connection Initiation"; server.ts holds the messages of a connection accepted while another
session is active until it decides). argv[1] is a device socket. The first connection holds
the device; the second connects, stops reading (shutdown SHUT_RD: the server's replies fail
with EPIPE, while its reads still see the bytes), the first connection closes, and the second at
once sends a REGION_WRITE then a VERSION, so the server makes the second the session and
handles its held messages: the first reply fails, and the VERSION behind it is still handled (the
device opens for this pid). Waits until stdin closes, then disconnects (the server releases
everything); prints "sent" once everything went out."""
import socket, struct, sys, time

HDR = struct.Struct('<HHIII')
CAPS = b'{"capabilities":{"max_msg_fds":16,"max_data_xfer_size":1048576}}\0'


def version(msg_id):
    body = struct.pack('<HH', 0, 0) + CAPS
    return HDR.pack(msg_id, 1, HDR.size + len(body), 0, 0) + body


def main():
    holder = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    holder.connect(sys.argv[1])
    holder.sendall(version(1))
    holder.recv(4096)
    queued = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    queued.connect(sys.argv[1])
    time.sleep(0.3)  # accepted while the holder's session is active: its messages wait
    write = struct.pack('<QII', 0, 7, 4) + b'\0\0\0\0'  # config space, before VERSION: EINVAL
    queued.shutdown(socket.SHUT_RD)
    # The holder closes first: sent before its close, the messages could be decided on (EBUSY)
    # in a poll phase before the one that reads the holder's end of stream.
    holder.close()
    queued.sendall(HDR.pack(2, 10, HDR.size + len(write), 0, 0) + write + version(3))
    print('sent', flush=True)
    sys.stdin.read()
    queued.close()


main()
