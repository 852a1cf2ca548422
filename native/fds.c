/*
 * File descriptors: close, dup, flags, UNIX stream sockets (listen/accept/connect/socketpair),
 * peer credentials (SO_PEERCRED, socket(7)). Every fd created here is close-on-exec; sockets are
 * non-blocking. Eventfds are in eventfd.c.
 */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* closeFd(fd): close(2). EINTR is not retried: on Linux the fd is gone either way. */
static napi_value close_fd(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 1, argv);
  int fd;
  if (!nv_arg_fd(env, argv[0], &fd)) return NULL;
  if (close(fd) < 0 && errno != EINTR) return nv_throw_errno(env, "close", errno);
  return nv_undefined(env);
}

/* dupFd(fd): a close-on-exec duplicate (F_DUPFD_CLOEXEC). */
static napi_value dup_fd(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 1, argv);
  int fd;
  if (!nv_arg_fd(env, argv[0], &fd)) return NULL;
  int r = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (r < 0) return nv_throw_errno(env, "fcntl", errno);
  return nv_new_fd(env, r);
}

/* replaceFd(target, source): target becomes a close-on-exec duplicate of source (dup3, which
 * swaps the file under the number atomically), then source is closed. */
static napi_value replace_fd(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 2, argv);
  int target, source;
  if (!nv_arg_fd(env, argv[0], &target)) return NULL;
  if (!nv_arg_fd(env, argv[1], &source)) return NULL;
  if (target == source) return nv_throw_errno(env, "dup3", EINVAL);
  if (dup3(source, target, O_CLOEXEC) < 0) return nv_throw_errno(env, "dup3", errno);
  close(source);
  return nv_undefined(env);
}

/* fdFlags(fd): { cloexec, nonBlocking } (F_GETFD / F_GETFL). */
static napi_value fd_flags(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 1, argv);
  int fd;
  if (!nv_arg_fd(env, argv[0], &fd)) return NULL;
  int fdf = fcntl(fd, F_GETFD);
  if (fdf < 0) return nv_throw_errno(env, "fcntl", errno);
  int flf = fcntl(fd, F_GETFL);
  if (flf < 0) return nv_throw_errno(env, "fcntl", errno);
  napi_value obj;
  NV_CHECK(env, napi_create_object(env, &obj));
  if (!nv_set(env, obj, "cloexec", nv_bool(env, (fdf & FD_CLOEXEC) != 0))) return NULL;
  if (!nv_set(env, obj, "nonBlocking", nv_bool(env, (flf & O_NONBLOCK) != 0))) return NULL;
  return obj;
}

/* setNonBlocking(fd, on) */
static napi_value set_non_blocking(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 2, argv);
  int fd;
  bool on;
  if (!nv_arg_fd(env, argv[0], &fd)) return NULL;
  if (!nv_arg_bool(env, argv[1], "on", &on)) return NULL;
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return nv_throw_errno(env, "fcntl", errno);
  fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
  if (fcntl(fd, F_SETFL, fl) < 0) return nv_throw_errno(env, "fcntl", errno);
  return nv_undefined(env);
}

/* socketPair(): [fd, fd], AF_UNIX SOCK_STREAM, non-blocking, close-on-exec. */
static napi_value socket_pair(napi_env env, napi_callback_info info) {
  (void)info;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
    return nv_throw_errno(env, "socketpair", errno);
  napi_value pair = nv_fd_array(env, sv, 2);
  if (pair == NULL) {
    close(sv[0]);
    close(sv[1]);
  }
  return pair;
}

static bool unix_address(napi_env env, napi_value path, struct sockaddr_un *addr) {
  char *p;
  if (!nv_arg_string(env, path, "path", &p)) return false;
  size_t len = strlen(p);
  memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  if (len == 0 || len >= sizeof addr->sun_path) {
    free(p);
    nv_throw_errno(env, "bind", ENAMETOOLONG);
    return false;
  }
  memcpy(addr->sun_path, p, len);
  free(p);
  return true;
}

/* listenUnix(path, backlog, mode): a listening AF_UNIX stream socket bound to path, its file
 * mode exactly `mode` whatever the umask. bind(2) creates the node with the socket inode's mode
 * minus the umask (net/unix/af_unix.c unix_bind), so an fchmod of the unbound socket makes the
 * node at most `mode` from its first instant: no window in which it is wider, and the
 * process-wide umask (shared with libuv's threads) is never touched. Only a umask that strips
 * bits of `mode` itself (e.g. 0277) leaves it narrower; a chmod then restores `mode` exactly
 * (the caller has checked the directory, so the name is still our socket). */
static napi_value listen_unix(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 3, argv);
  struct sockaddr_un addr;
  int32_t backlog;
  uint32_t mode;
  if (!unix_address(env, argv[0], &addr)) return NULL;
  if (!nv_arg_int32(env, argv[1], "backlog", &backlog)) return NULL;
  if (!nv_arg_uint32(env, argv[2], "mode", &mode)) return NULL;
  if (mode & ~(uint32_t)0777) return nv_throw_errno(env, "fchmod", EINVAL);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return nv_throw_errno(env, "socket", errno);
  if (fchmod(fd, (mode_t)mode) < 0) {
    int e = errno;
    close(fd);
    return nv_throw_errno(env, "fchmod", e);
  }
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    int e = errno;
    close(fd);
    return nv_throw_errno(env, "bind", e);
  }
  struct stat st;
  int stat_error = lstat(addr.sun_path, &st) < 0 ? errno : S_ISSOCK(st.st_mode) ? 0 : EEXIST;
  if (stat_error != 0) { /* gone or replaced under us: nothing of ours to unlink */
    close(fd);
    return nv_throw_errno(env, "lstat", stat_error);
  }
  if ((st.st_mode & 0777) != mode && chmod(addr.sun_path, (mode_t)mode) < 0) {
    int e = errno;
    unlink(addr.sun_path);
    close(fd);
    return nv_throw_errno(env, "chmod", e);
  }
  if (listen(fd, backlog) < 0) {
    int e = errno;
    unlink(addr.sun_path);
    close(fd);
    return nv_throw_errno(env, "listen", e);
  }
  napi_value r = nv_int32(env, fd);
  if (r == NULL) {
    unlink(addr.sun_path);
    close(fd);
  }
  return r;
}

/* acceptConnection(listenFd): a connected fd (non-blocking, close-on-exec) or null if none is
 * pending (EAGAIN) or the peer gave up before we got to it (ECONNABORTED). */
static napi_value accept_connection(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 1, argv);
  int fd;
  if (!nv_arg_fd(env, argv[0], &fd)) return NULL;
  for (;;) {
    int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c >= 0) return nv_new_fd(env, c);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED) return nv_null(env);
    return nv_throw_errno(env, "accept4", errno);
  }
}

/* connectUnix(path): a connected, non-blocking, close-on-exec fd. A UNIX stream connect never
 * goes "in progress": it succeeds at once or fails (EAGAIN when the listener's backlog is full,
 * ECONNREFUSED/ENOENT when nobody listens). */
static napi_value connect_unix(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 1, argv);
  struct sockaddr_un addr;
  if (!unix_address(env, argv[0], &addr)) return NULL;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return nv_throw_errno(env, "socket", errno);
  int r;
  do r = connect(fd, (struct sockaddr *)&addr, sizeof addr);
  while (r < 0 && errno == EINTR);
  if (r < 0) {
    int e = errno;
    close(fd);
    return nv_throw_errno(env, "connect", e);
  }
  return nv_new_fd(env, fd);
}

/* shutdownFd(fd): shutdown(SHUT_RDWR), waking a peer blocked on the socket. */
static napi_value shutdown_fd(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 1, argv);
  int fd;
  if (!nv_arg_fd(env, argv[0], &fd)) return NULL;
  if (shutdown(fd, SHUT_RDWR) < 0 && errno != ENOTCONN) return nv_throw_errno(env, "shutdown", errno);
  return nv_undefined(env);
}

/*
 * sendBuffer(fd, bytes): asks for a socket send buffer of `bytes` (SO_SNDBUFFORCE when allowed,
 * else SO_SNDBUF, which net.core.wmem_max caps); returns what the kernel set (SO_SNDBUF, which
 * counts its own overhead: about twice what was asked).
 */
static napi_value send_buffer(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 2, argv);
  int fd;
  uint32_t bytes;
  if (!nv_arg_fd(env, argv[0], &fd)) return NULL;
  if (!nv_arg_uint32(env, argv[1], "bytes", &bytes)) return NULL;
  int value = bytes > INT32_MAX ? INT32_MAX : (int)bytes;
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &value, sizeof value) < 0 &&
      setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &value, sizeof value) < 0)
    return nv_throw_errno(env, "setsockopt(SO_SNDBUF)", errno);
  int set = 0;
  socklen_t len = sizeof set;
  if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &set, &len) < 0)
    return nv_throw_errno(env, "getsockopt(SO_SNDBUF)", errno);
  return nv_int32(env, set);
}

/* peerCredentials(fd): { pid, uid, gid } of the process that connected (SO_PEERCRED). */
static napi_value peer_credentials(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 1, argv);
  int fd;
  if (!nv_arg_fd(env, argv[0], &fd)) return NULL;
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
    return nv_throw_errno(env, "getsockopt", errno);
  napi_value obj;
  NV_CHECK(env, napi_create_object(env, &obj));
  if (!nv_set(env, obj, "pid", nv_int32(env, cred.pid))) return NULL;
  if (!nv_set(env, obj, "uid", nv_int32(env, (int32_t)cred.uid))) return NULL;
  if (!nv_set(env, obj, "gid", nv_int32(env, (int32_t)cred.gid))) return NULL;
  return obj;
}

/* lockExclusive(fd): flock(fd, LOCK_EX | LOCK_NB); false when another open file description
 * holds it (EWOULDBLOCK). The lock goes with the description: a process killed loses it. */
static napi_value lock_exclusive(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 1, argv);
  int fd;
  if (!nv_arg_fd(env, argv[0], &fd)) return NULL;
  int r;
  do r = flock(fd, LOCK_EX | LOCK_NB);
  while (r < 0 && errno == EINTR);
  if (r < 0 && errno == EWOULDBLOCK) return nv_bool(env, false);
  if (r < 0) return nv_throw_errno(env, "flock", errno);
  return nv_bool(env, true);
}

/* parentDeathSignal(signal): prctl(PR_SET_PDEATHSIG, signal), prctl(2): `signal` reaches this
 * process when the thread that forked it exits. Returns getppid() read after the call: when the
 * parent was gone before, the caller sees another parent (a reaper) and acts itself. */
static napi_value parent_death_signal(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 1, argv);
  uint32_t sig;
  if (!nv_arg_uint32(env, argv[0], "signal", &sig)) return NULL;
  if (prctl(PR_SET_PDEATHSIG, (unsigned long)sig, 0, 0, 0) < 0)
    return nv_throw_errno(env, "prctl(PR_SET_PDEATHSIG)", errno);
  return nv_int32(env, (int32_t)getppid());
}

napi_status nv_init_fds(napi_env env, napi_value exports) {
  napi_status s;
  if ((s = nv_export(env, exports, "closeFd", close_fd)) != napi_ok) return s;
  if ((s = nv_export(env, exports, "dupFd", dup_fd)) != napi_ok) return s;
  if ((s = nv_export(env, exports, "replaceFd", replace_fd)) != napi_ok) return s;
  if ((s = nv_export(env, exports, "lockExclusive", lock_exclusive)) != napi_ok) return s;
  if ((s = nv_export(env, exports, "fdFlags", fd_flags)) != napi_ok) return s;
  if ((s = nv_export(env, exports, "setNonBlocking", set_non_blocking)) != napi_ok) return s;
  if ((s = nv_export(env, exports, "socketPair", socket_pair)) != napi_ok) return s;
  if ((s = nv_export(env, exports, "listenUnix", listen_unix)) != napi_ok) return s;
  if ((s = nv_export(env, exports, "acceptConnection", accept_connection)) != napi_ok) return s;
  if ((s = nv_export(env, exports, "connectUnix", connect_unix)) != napi_ok) return s;
  if ((s = nv_export(env, exports, "shutdownFd", shutdown_fd)) != napi_ok) return s;
  if ((s = nv_export(env, exports, "sendBuffer", send_buffer)) != napi_ok) return s;
  if ((s = nv_export(env, exports, "parentDeathSignal", parent_death_signal)) != napi_ok) return s;
  return nv_export(env, exports, "peerCredentials", peer_credentials);
}
