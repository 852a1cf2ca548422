/*
 * Argument parsing, errors, status checks and type tags for the native addon (see common.h).
 */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Random 128-bit tags, one per kind of wrapped struct (napi_type_tag). */
const napi_type_tag NV_TAG_MAPPING = {0x6a1c0e5f3b9d4c21ULL, 0x8f2e7a4d19c3b650ULL};
const napi_type_tag NV_TAG_WATCHER = {0x2d7b93e14f086a5cULL, 0xb4c1e8f0a7365d92ULL};

void nv_throw_status(napi_env env, napi_status status, const char *call) {
  /* Read N-API's message first: most N-API calls (the pending check too) reset it. */
  const napi_extended_error_info *info = NULL;
  char reason[128] = "unknown";
  if (napi_get_last_error_info(env, &info) == napi_ok && info != NULL && info->error_message != NULL)
    snprintf(reason, sizeof reason, "%s", info->error_message);
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) return;
  char message[512];
  snprintf(message, sizeof message, "vfio-nvlink2 native: %s failed: %s (napi_status %d)", call,
           reason, (int)status);
  /* The reporter of last resort: if even this throw fails, there is nothing left to tell. */
  (void)napi_throw_error(env, "ERR_NATIVE_NAPI", message);
}

napi_value nv_throw_errno(napi_env env, const char *syscall, int err) {
  const char *name = strerrorname_np(err);
  char code[32];
  if (name == NULL) {
    snprintf(code, sizeof code, "E%d", err);
    name = code;
  }
  char message[256];
  snprintf(message, sizeof message, "%s %s (%s)", syscall, name, strerror(err));
  napi_value msg, code_value, error, errno_value, syscall_value;
  NV_CHECK(env, napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg));
  NV_CHECK(env, napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code_value));
  NV_CHECK(env, napi_create_error(env, code_value, msg, &error));
  NV_CHECK(env, napi_create_int32(env, err, &errno_value));
  NV_CHECK(env, napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_value));
  NV_CHECK(env, napi_set_named_property(env, error, "errno", errno_value));
  NV_CHECK(env, napi_set_named_property(env, error, "syscall", syscall_value));
  NV_CHECK(env, napi_throw(env, error));
  return NULL;
}

napi_value nv_throw_type(napi_env env, const char *message) {
  NV_CHECK(env, napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message));
  return NULL;
}

static bool fail(napi_env env, const char *what, const char *expected) {
  char message[160];
  snprintf(message, sizeof message, "%s must be %s", what, expected);
  nv_throw_type(env, message);
  return false;
}

bool nv_wrap_tagged(napi_env env, napi_value object, const napi_type_tag *tag, void *data,
                    napi_finalize finalize) {
  NV_CHECK_BOOL(env, napi_wrap(env, object, data, finalize, NULL, NULL));
  NV_CHECK_BOOL(env, napi_type_tag_object(env, object, tag));
  return true;
}

bool nv_unwrap_tagged(napi_env env, napi_value value, const napi_type_tag *tag, const char *what,
                      const char *expected, void **out) {
  napi_valuetype type;
  NV_CHECK_BOOL(env, napi_typeof(env, value, &type));
  /* Only objects carry tags (napi_check_object_type_tag fails on anything else). */
  if (type != napi_object) return fail(env, what, expected);
  bool tagged = false;
  NV_CHECK_BOOL(env, napi_check_object_type_tag(env, value, tag, &tagged));
  if (!tagged) return fail(env, what, expected);
  NV_CHECK_BOOL(env, napi_unwrap(env, value, out));
  if (*out == NULL) return fail(env, what, expected);
  return true;
}

bool nv_arg_int32(napi_env env, napi_value value, const char *what, int32_t *out) {
  double d;
  if (napi_get_value_double(env, value, &d) != napi_ok || d != (double)(int32_t)d)
    return fail(env, what, "a 32-bit integer");
  *out = (int32_t)d;
  return true;
}

bool nv_arg_uint32(napi_env env, napi_value value, const char *what, uint32_t *out) {
  double d;
  if (napi_get_value_double(env, value, &d) != napi_ok || d < 0 || d > 4294967295.0 ||
      d != (double)(uint32_t)d)
    return fail(env, what, "an unsigned 32-bit integer");
  *out = (uint32_t)d;
  return true;
}

bool nv_arg_fd(napi_env env, napi_value value, int *out) {
  int32_t fd;
  if (!nv_arg_int32(env, value, "fd", &fd)) return false;
  if (fd < 0) return fail(env, "fd", "a non-negative integer");
  *out = fd;
  return true;
}

bool nv_arg_u64(napi_env env, napi_value value, const char *what, uint64_t *out) {
  napi_valuetype type;
  NV_CHECK_BOOL(env, napi_typeof(env, value, &type));
  if (type == napi_bigint) {
    bool lossless;
    if (napi_get_value_bigint_uint64(env, value, out, &lossless) != napi_ok || !lossless)
      return fail(env, what, "a bigint in [0, 2^64)");
    return true;
  }
  double d;
  if (type != napi_number || napi_get_value_double(env, value, &d) != napi_ok || d < 0 ||
      d > 9007199254740991.0 || d != (double)(uint64_t)d)
    return fail(env, what, "a bigint or a safe non-negative integer");
  *out = (uint64_t)d;
  return true;
}

bool nv_arg_bool(napi_env env, napi_value value, const char *what, bool *out) {
  if (napi_get_value_bool(env, value, out) != napi_ok) return fail(env, what, "a boolean");
  return true;
}

bool nv_arg_bytes(napi_env env, napi_value value, const char *what, void **data, size_t *len) {
  bool is_typed;
  NV_CHECK_BOOL(env, napi_is_typedarray(env, value, &is_typed));
  if (!is_typed) return fail(env, what, "a Uint8Array");
  napi_typedarray_type type;
  size_t length;
  NV_CHECK_BOOL(env, napi_get_typedarray_info(env, value, &type, &length, data, NULL, NULL));
  if (type != napi_uint8_array) return fail(env, what, "a Uint8Array");
  *len = length;
  return true;
}

bool nv_arg_string(napi_env env, napi_value value, const char *what, char **out) {
  size_t len;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &len) != napi_ok)
    return fail(env, what, "a string");
  char *buf = malloc(len + 1);
  if (buf == NULL) {
    nv_throw_errno(env, "malloc", ENOMEM);
    return false;
  }
  napi_status s = napi_get_value_string_utf8(env, value, buf, len + 1, &len);
  if (s != napi_ok) {
    free(buf);
    nv_throw_status(env, s, "napi_get_value_string_utf8(env, value, buf, len + 1, &len)");
    return false;
  }
  *out = buf;
  return true;
}

napi_value nv_int32(napi_env env, int32_t v) {
  napi_value r;
  NV_CHECK(env, napi_create_int32(env, v, &r));
  return r;
}

napi_value nv_double(napi_env env, double v) {
  napi_value r;
  NV_CHECK(env, napi_create_double(env, v, &r));
  return r;
}

napi_value nv_u64(napi_env env, uint64_t v) {
  napi_value r;
  NV_CHECK(env, napi_create_bigint_uint64(env, v, &r));
  return r;
}

napi_value nv_bool(napi_env env, bool v) {
  napi_value r;
  NV_CHECK(env, napi_get_boolean(env, v, &r));
  return r;
}

napi_value nv_null(napi_env env) {
  napi_value r;
  NV_CHECK(env, napi_get_null(env, &r));
  return r;
}

napi_value nv_undefined(napi_env env) {
  napi_value r;
  NV_CHECK(env, napi_get_undefined(env, &r));
  return r;
}

bool nv_set(napi_env env, napi_value obj, const char *name, napi_value value) {
  if (value == NULL) return false; /* its maker threw */
  NV_CHECK_BOOL(env, napi_set_named_property(env, obj, name, value));
  return true;
}

napi_value nv_new_fd(napi_env env, int fd) {
  napi_value r = nv_int32(env, fd);
  if (r == NULL) close(fd);
  return r;
}

napi_value nv_fd_array(napi_env env, const int *fds, size_t count) {
  napi_value arr;
  NV_CHECK(env, napi_create_array_with_length(env, count, &arr));
  for (size_t i = 0; i < count; i++) {
    napi_value fd = nv_int32(env, fds[i]);
    if (fd == NULL) return NULL;
    NV_CHECK(env, napi_set_element(env, arr, (uint32_t)i, fd));
  }
  return arr;
}

napi_status nv_export(napi_env env, napi_value exports, const char *name, napi_callback fn) {
  napi_value f;
  NV_CHECK_STATUS(env, napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, NULL, &f));
  NV_CHECK_STATUS(env, napi_set_named_property(env, exports, name, f));
  return napi_ok;
}

size_t nv_take_fds(struct msghdr *msg, int *out, size_t max) {
  size_t n = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR(msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < k; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      if (n < max) out[n++] = fd;
      else close(fd);
    }
  }
  return n;
}

napi_value nv_queue_promise_work(napi_env env, const char *name, napi_async_execute_callback execute,
                                 napi_async_complete_callback complete, void *data,
                                 napi_deferred *deferred, napi_async_work *work) {
  napi_value promise, resource;
  napi_status s = napi_create_promise(env, deferred, &promise);
  if (s == napi_ok) s = napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource);
  if (s == napi_ok) s = napi_create_async_work(env, NULL, resource, execute, complete, data, work);
  if (s == napi_ok) s = napi_queue_async_work(env, *work);
  if (s != napi_ok) {
    nv_throw_status(env, s, "napi_queue_async_work");
    return NULL;
  }
  return promise;
}

void nv_settle(napi_env env, napi_deferred deferred, bool built, napi_value result, const char *who) {
  if (built && napi_resolve_deferred(env, deferred, result) == napi_ok) return;
  napi_value error = NULL, message;
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) != napi_ok) pending = false;
  if (pending && napi_get_and_clear_last_exception(env, &error) != napi_ok) error = NULL;
  char text[160];
  snprintf(text, sizeof text, "%s: cannot build its outcome", who);
  if (error == NULL && (napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message) != napi_ok ||
                        napi_create_error(env, NULL, message, &error) != napi_ok))
    error = NULL;
  if (error == NULL && napi_get_undefined(env, &error) != napi_ok) error = NULL;
  if (error == NULL || napi_reject_deferred(env, deferred, error) != napi_ok)
    napi_fatal_error(who, NAPI_AUTO_LENGTH, "cannot settle its promise", NAPI_AUTO_LENGTH);
}
