/*
 * Messages with file descriptors over UNIX stream sockets: sendmsg(2)/recvmsg(2) with
 * SCM_RIGHTS ancillary data (unix(7), cmsg(3)). Received fds are close-on-exec
 * (MSG_CMSG_CLOEXEC); truncated control data (MSG_CTRUNC) is reported and whatever fds did
 * arrive are closed, so none leak.
 *
 * Partial writes: sendMessage returns the bytes the kernel took, which on a non-blocking socket
 * may be fewer than offered (0 when the socket buffer is full: EAGAIN is not an error). The fds
 * always travel with the first byte sent (the kernel attaches them to the first segment), so a
 * caller resumes the remainder with no fds once the socket is writable again.
 */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

static bool read_iovecs(napi_env env, napi_value data, struct iovec *iov, size_t *count,
                        size_t *total) {
  bool is_array;
  NV_CHECK_BOOL(env, napi_is_array(env, data, &is_array));
  *total = 0;
  if (!is_array) {
    if (!nv_arg_bytes(env, data, "data", &iov[0].iov_base, &iov[0].iov_len)) return false;
    *count = 1;
    *total = iov[0].iov_len;
    return true;
  }
  uint32_t n;
  NV_CHECK_BOOL(env, napi_get_array_length(env, data, &n));
  if (n > NV_MAX_IOV) {
    nv_throw_errno(env, "sendmsg", EMSGSIZE);
    return false;
  }
  for (uint32_t i = 0; i < n; i++) {
    napi_value part;
    NV_CHECK_BOOL(env, napi_get_element(env, data, i, &part));
    if (!nv_arg_bytes(env, part, "data[i]", &iov[i].iov_base, &iov[i].iov_len)) return false;
    *total += iov[i].iov_len;
  }
  *count = n;
  return true;
}

static bool read_fds(napi_env env, napi_value value, int *fds, size_t *count) {
  bool is_array;
  NV_CHECK_BOOL(env, napi_is_array(env, value, &is_array));
  if (!is_array) return nv_throw_type(env, "fds must be an array of numbers"), false;
  uint32_t n;
  NV_CHECK_BOOL(env, napi_get_array_length(env, value, &n));
  if (n > NV_SCM_MAX_FD) {
    nv_throw_errno(env, "sendmsg", EINVAL);
    return false;
  }
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    NV_CHECK_BOOL(env, napi_get_element(env, value, i, &v));
    if (!nv_arg_fd(env, v, &fds[i])) return false;
  }
  *count = n;
  return true;
}

/* sendMessage(fd, data: Uint8Array | Uint8Array[], fds: number[]): bytes sent (0 on EAGAIN). */
static napi_value send_message(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 3, argv);
  int fd;
  struct iovec iov[NV_MAX_IOV];
  int fds[NV_SCM_MAX_FD];
  size_t iov_count, total, fd_count;
  if (!nv_arg_fd(env, argv[0], &fd)) return NULL;
  if (!read_iovecs(env, argv[1], iov, &iov_count, &total)) return NULL;
  if (!read_fds(env, argv[2], fds, &fd_count)) return NULL;
  /* A stream socket drops ancillary data that comes with no bytes. */
  if (fd_count > 0 && total == 0) return nv_throw_errno(env, "sendmsg", EINVAL);

  nv_scm_control control;
  struct msghdr msg = {.msg_iov = iov, .msg_iovlen = iov_count};
  if (fd_count > 0) {
    memset(control.buf, 0, CMSG_SPACE(sizeof(int) * fd_count));
    msg.msg_control = control.buf;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fd_count);
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * fd_count);
    memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * fd_count);
  }
  ssize_t r;
  do r = sendmsg(fd, &msg, MSG_NOSIGNAL);
  while (r < 0 && errno == EINTR);
  if (r < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return nv_int32(env, 0);
    return nv_throw_errno(env, "sendmsg", errno);
  }
  return nv_double(env, (double)r);
}

/* The result object of a receive: { bytes: count or a Buffer copy, fds, truncatedControl }. */
static napi_value build_received(napi_env env, ssize_t r, const void *buf, bool copy,
                                 const int *fds, size_t fd_count, bool truncated) {
  napi_value obj, bytes;
  NV_CHECK(env, napi_create_object(env, &obj));
  if (copy) {
    void *data;
    NV_CHECK(env, napi_create_buffer_copy(env, (size_t)r, buf, &data, &bytes));
  } else if ((bytes = nv_double(env, (double)r)) == NULL) {
    return NULL;
  }
  if (!nv_set(env, obj, "bytes", bytes)) return NULL;
  if (!nv_set(env, obj, "fds", nv_fd_array(env, fds, fd_count))) return NULL;
  if (!nv_set(env, obj, "truncatedControl", nv_bool(env, truncated))) return NULL;
  return obj;
}

/* Receives into buf; returns the result object, null on EAGAIN, NULL after throwing. */
static napi_value receive(napi_env env, int fd, void *buf, size_t len, uint32_t max_fds,
                          bool copy) {
  if (max_fds > NV_SCM_MAX_FD) max_fds = NV_SCM_MAX_FD;
  nv_scm_control control;
  struct iovec iov = {.iov_base = buf, .iov_len = len};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
  if (max_fds > 0) {
    msg.msg_control = control.buf;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * max_fds);
  }
  ssize_t r;
  do r = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
  while (r < 0 && errno == EINTR);
  if (r < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return nv_null(env);
    return nv_throw_errno(env, "recvmsg", errno);
  }
  /* truncated control data: whatever fds did arrive are closed, none is handed out */
  bool truncated = (msg.msg_flags & MSG_CTRUNC) != 0;
  int fds[NV_SCM_MAX_FD];
  size_t fd_count = nv_take_fds(&msg, fds, truncated ? 0 : max_fds);
  napi_value obj = build_received(env, r, buf, copy, fds, fd_count, truncated);
  if (obj == NULL) /* thrown: the fds never reached JS, so nobody else can close them */
    for (size_t i = 0; i < fd_count; i++) close(fds[i]);
  return obj;
}

/* receiveInto(fd, buf: Uint8Array, maxFds): { bytes: number, fds, truncatedControl } | null.
 * bytes 0 means end of stream. */
static napi_value receive_into(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 3, argv);
  int fd;
  void *buf;
  size_t len;
  uint32_t max_fds;
  if (!nv_arg_fd(env, argv[0], &fd)) return NULL;
  if (!nv_arg_bytes(env, argv[1], "buf", &buf, &len)) return NULL;
  if (!nv_arg_uint32(env, argv[2], "maxFds", &max_fds)) return NULL;
  if (len == 0) return nv_throw_errno(env, "recvmsg", EINVAL);
  return receive(env, fd, buf, len, max_fds, false);
}

/* receiveMessage(fd, maxBytes, maxFds): { bytes: Buffer, fds, truncatedControl } | null. */
static napi_value receive_message(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 3, argv);
  int fd;
  uint32_t max_bytes, max_fds;
  if (!nv_arg_fd(env, argv[0], &fd)) return NULL;
  if (!nv_arg_uint32(env, argv[1], "maxBytes", &max_bytes)) return NULL;
  if (!nv_arg_uint32(env, argv[2], "maxFds", &max_fds)) return NULL;
  if (max_bytes == 0) return nv_throw_errno(env, "recvmsg", EINVAL);
  void *buf = malloc(max_bytes);
  if (buf == NULL) return nv_throw_errno(env, "malloc", ENOMEM);
  napi_value r = receive(env, fd, buf, max_bytes, max_fds, true);
  free(buf);
  return r;
}

napi_status nv_init_scm(napi_env env, napi_value exports) {
  napi_status s;
  if ((s = nv_export(env, exports, "sendMessage", send_message)) != napi_ok) return s;
  if ((s = nv_export(env, exports, "receiveInto", receive_into)) != napi_ok) return s;
  return nv_export(env, exports, "receiveMessage", receive_message);
}
