/*
 * The numbers the TypeScript side needs, taken from the C headers that define them (one place
 * for each fact): errno values by name (errno.h), eventfd flags (sys/eventfd.h), file seals
 * (fcntl.h), libuv poll events (uv.h) and the addon's own limits. Exported as frozen objects
 * `errno` and `constants`, plus errnoName(n) for any errno the C library knows.
 */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <uv.h>

/* Keep in step with ErrnoName in src/native/errno.ts (checked when the addon loads). */
#define NV_ERRNOS(X)                                                                        \
  X(EPERM) X(ENOENT) X(EINTR) X(EIO) X(ENXIO) X(E2BIG) X(EBADF) X(EAGAIN) X(ENOMEM)         \
  X(EACCES) X(EFAULT) X(EBUSY) X(EEXIST) X(ENODEV) X(ENOTDIR) X(EINVAL) X(ENFILE) X(EMFILE) \
  X(ENOTTY) X(EFBIG) X(ENOSPC) X(EPIPE) X(ENAMETOOLONG) X(ENOSYS) X(ENODATA) X(EPROTO)      \
  X(EOVERFLOW) X(EILSEQ) X(ENOTSOCK) X(EMSGSIZE) X(EOPNOTSUPP) X(EADDRINUSE)               \
  X(ECONNABORTED) X(ECONNRESET) X(ENOTCONN) X(ETIMEDOUT) X(ECONNREFUSED)

static napi_status set_int(napi_env env, napi_value obj, const char *name, int64_t v) {
  napi_value value;
  NV_CHECK_STATUS(env, napi_create_int64(env, v, &value));
  NV_CHECK_STATUS(env, napi_set_named_property(env, obj, name, value));
  return napi_ok;
}

/* errnoName(n): "EAGAIN" for 11 (strerrorname_np), "E<n>" for a number it does not know. */
static napi_value errno_name(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 1, argv);
  int32_t n;
  if (!nv_arg_int32(env, argv[0], "errno", &n)) return NULL;
  const char *name = strerrorname_np(n);
  char fallback[24];
  if (name == NULL) {
    snprintf(fallback, sizeof fallback, "E%d", (int)n);
    name = fallback;
  }
  napi_value r;
  NV_CHECK(env, napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &r));
  return r;
}

napi_status nv_init_constants(napi_env env, napi_value exports) {
  napi_value errnos, constants;
  NV_CHECK_STATUS(env, napi_create_object(env, &errnos));
#define NV_SET_ERRNO(name)                                                                 \
  if (set_int(env, errnos, #name, name) != napi_ok) return napi_pending_exception;
  NV_ERRNOS(NV_SET_ERRNO)
#undef NV_SET_ERRNO
  NV_CHECK_STATUS(env, napi_object_freeze(env, errnos));
  NV_CHECK_STATUS(env, napi_set_named_property(env, exports, "errno", errnos));

  NV_CHECK_STATUS(env, napi_create_object(env, &constants));
  const struct {
    const char *name;
    int64_t value;
  } table[] = {
      {"EFD_NONBLOCK", EFD_NONBLOCK},
      {"EFD_SEMAPHORE", EFD_SEMAPHORE},
      {"F_SEAL_SEAL", F_SEAL_SEAL},
      {"F_SEAL_SHRINK", F_SEAL_SHRINK},
      {"F_SEAL_GROW", F_SEAL_GROW},
      {"F_SEAL_WRITE", F_SEAL_WRITE},
      {"F_SEAL_FUTURE_WRITE", F_SEAL_FUTURE_WRITE},
      {"O_NONBLOCK", O_NONBLOCK},
      {"UV_READABLE", UV_READABLE},
      {"UV_WRITABLE", UV_WRITABLE},
      {"SCM_MAX_FD", NV_SCM_MAX_FD},
      {"MAX_IOV", NV_MAX_IOV},
      {"MAX_WINDOW", (int64_t)NV_MAX_WINDOW},
  };
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
    if (set_int(env, constants, table[i].name, table[i].value) != napi_ok)
      return napi_pending_exception;
  NV_CHECK_STATUS(env, napi_object_freeze(env, constants));
  NV_CHECK_STATUS(env, napi_set_named_property(env, exports, "constants", constants));
  return nv_export(env, exports, "errnoName", errno_name);
}
