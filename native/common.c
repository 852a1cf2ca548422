/*
 * Argument parsing and errno errors for the native addon (see common.h).
 */
#define _GNU_SOURCE
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
  if (napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg) != napi_ok) return NULL;
  if (napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code_value) != napi_ok) return NULL;
  if (napi_create_error(env, code_value, msg, &error) != napi_ok) return NULL;
  napi_create_int32(env, err, &errno_value);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_value);
  napi_set_named_property(env, error, "errno", errno_value);
  napi_set_named_property(env, error, "syscall", syscall_value);
  napi_throw(env, error);
  return NULL;
}

napi_value nv_throw_type(napi_env env, const char *message) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
  return NULL;
}

static bool fail(napi_env env, const char *what, const char *expected) {
  char message[160];
  snprintf(message, sizeof message, "%s must be %s", what, expected);
  nv_throw_type(env, message);
  return false;
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
  if (napi_typeof(env, value, &type) != napi_ok) return false;
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

bool nv_arg_bytes(napi_env env, napi_value value, const char *what, void **data, size_t *len) {
  bool is_typed;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok) return false;
  if (!is_typed) return fail(env, what, "a Uint8Array");
  napi_typedarray_type type;
  size_t length;
  if (napi_get_typedarray_info(env, value, &type, &length, data, NULL, NULL) != napi_ok)
    return false;
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
    nv_throw_errno(env, "malloc", 12);
    return false;
  }
  napi_get_value_string_utf8(env, value, buf, len + 1, &len);
  *out = buf;
  return true;
}

napi_value nv_int32(napi_env env, int32_t v) {
  napi_value r;
  napi_create_int32(env, v, &r);
  return r;
}

napi_value nv_u64(napi_env env, uint64_t v) {
  napi_value r;
  napi_create_bigint_uint64(env, v, &r);
  return r;
}

napi_value nv_bool(napi_env env, bool v) {
  napi_value r;
  napi_get_boolean(env, v, &r);
  return r;
}

napi_value nv_undefined(napi_env env) {
  napi_value r;
  napi_get_undefined(env, &r);
  return r;
}

napi_value nv_fd_array(napi_env env, const int *fds, size_t count) {
  napi_value arr;
  napi_create_array_with_length(env, count, &arr);
  for (size_t i = 0; i < count; i++) napi_set_element(env, arr, (uint32_t)i, nv_int32(env, fds[i]));
  return arr;
}

napi_status nv_export(napi_env env, napi_value exports, const char *name, napi_callback fn) {
  napi_value f;
  napi_status s = napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, NULL, &f);
  if (s != napi_ok) return s;
  return napi_set_named_property(env, exports, name, f);
}
