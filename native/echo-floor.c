/*
 * The bench's C floor (issue 14): the raw echo of src/bench/echo-server.ts as a plain C
 * program, the reference a device server is held to (libvfio-user is C). One process, one
 * thread, blocking I/O: poll(2) over the listening socket, stdin and the connections; a
 * readable connection is read one whole frame at a time and answered at once. It answers in
 * vfio-user's shapes without a device behind them: a REGION_READ-shaped request (16-byte
 * header + 16-byte head whose last u32 is `count`) gets header + head + `count` bytes of 0xa5;
 * anything else (a REGION_WRITE: header + head + data) gets header + head. Nothing else is
 * decoded.
 *
 *   vfio_nvlink2_echo_floor SOCKET_PATH
 *
 * Prints "listening\n" on stdout once it listens; exits 0 when stdin reaches EOF or on
 * SIGTERM/SIGINT, removing the socket. Built by binding.gyp next to the addon.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#define HEADER_BYTES 16u
#define HEAD_BYTES 16u
#define MAX_DATA (1024u * 1024u)
#define MAX_FRAME (HEADER_BYTES + HEAD_BYTES + MAX_DATA)
#define MAX_CONNS 64
#define REGION_READ 9u
#define REPLY_FLAG 1u

static uint8_t frame[MAX_FRAME];
static uint8_t data[MAX_DATA];
static volatile sig_atomic_t stopping;

static void on_signal(int sig) {
  (void)sig;
  stopping = 1;
}

static uint32_t get_u32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_u32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

/* Reads exactly n bytes; 0 on success, -1 on EOF or error. */
static int read_all(int fd, uint8_t *buf, size_t n) {
  while (n > 0) {
    ssize_t got = recv(fd, buf, n, MSG_WAITALL);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return -1;
    buf += got;
    n -= (size_t)got;
  }
  return 0;
}

static int write_all(int fd, struct iovec *iov, int count) {
  while (count > 0) {
    ssize_t put = writev(fd, iov, count);
    if (put < 0 && errno == EINTR) continue;
    if (put < 0) return -1;
    while (count > 0 && (size_t)put >= iov->iov_len) {
      put -= (ssize_t)iov->iov_len;
      iov++;
      count--;
    }
    if (count > 0) {
      iov->iov_base = (uint8_t *)iov->iov_base + put;
      iov->iov_len -= (size_t)put;
    }
  }
  return 0;
}

/* One request and its reply; -1 closes the connection. */
static int serve_one(int fd) {
  if (read_all(fd, frame, HEADER_BYTES) < 0) return -1;
  uint32_t size = get_u32(frame + 4);
  if (size < HEADER_BYTES + HEAD_BYTES || size > MAX_FRAME) return -1;
  if (read_all(fd, frame + HEADER_BYTES, size - HEADER_BYTES) < 0) return -1;
  uint32_t command = (uint32_t)frame[2] | (uint32_t)frame[3] << 8;
  uint32_t count = command == REGION_READ ? get_u32(frame + HEADER_BYTES + 12) : 0;
  if (count > MAX_DATA) count = MAX_DATA;
  put_u32(frame + 4, HEADER_BYTES + HEAD_BYTES + count);
  put_u32(frame + 8, REPLY_FLAG);
  struct iovec iov[2] = {{frame, HEADER_BYTES + HEAD_BYTES}, {data, count}};
  return write_all(fd, iov, count > 0 ? 2 : 1);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s SOCKET_PATH\n", argv[0]);
    return 2;
  }
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(argv[1]) >= sizeof(addr.sun_path)) {
    fprintf(stderr, "echo floor: socket path %s is too long\n", argv[1]);
    return 2;
  }
  strcpy(addr.sun_path, argv[1]);
  memset(data, 0xa5, sizeof(data));
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
      listen(listener, 16) < 0) {
    fprintf(stderr, "echo floor: %s: %s\n", argv[1], strerror(errno));
    return 1;
  }
  printf("listening\n");
  fflush(stdout);

  struct pollfd fds[2 + MAX_CONNS];
  int nconns = 0;
  fds[0] = (struct pollfd){.fd = 0, .events = POLLIN};
  fds[1] = (struct pollfd){.fd = listener, .events = POLLIN};
  while (!stopping) {
    if (poll(fds, (nfds_t)(2 + nconns), -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[0].revents) {
      char c;
      if (read(0, &c, 1) <= 0) break;
    }
    if (fds[1].revents & POLLIN) {
      int conn = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
      if (conn >= 0 && nconns < MAX_CONNS) {
        fds[2 + nconns++] = (struct pollfd){.fd = conn, .events = POLLIN};
      } else if (conn >= 0) {
        close(conn);
      }
    }
    for (int i = 0; i < nconns; i++) {
      struct pollfd *p = &fds[2 + i];
      if (p->revents == 0) continue;
      if (serve_one(p->fd) < 0) {
        close(p->fd);
        fds[2 + i] = fds[2 + --nconns];
        i--;
      }
    }
  }
  unlink(argv[1]);
  return 0;
}
