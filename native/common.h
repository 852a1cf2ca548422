/*
 * Shared helpers of the vfio-nvlink2 native addon: argument parsing and errno-carrying errors
 * for plain Node-API (node_api.h). Every syscall failure becomes a JS Error with `code` (the
 * errno name, as Node's own fs errors: "ENOENT"), `errno` (the positive Linux number) and
 * `syscall`.
 */
#ifndef VFIO_NVLINK2_NATIVE_COMMON_H
#define VFIO_NVLINK2_NATIVE_COMMON_H

#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Throws an Error for `err` (an errno value) raised by `syscall`; returns NULL for convenience. */
napi_value nv_throw_errno(napi_env env, const char *syscall, int err);
/* Throws a TypeError with `message`; returns NULL. */
napi_value nv_throw_type(napi_env env, const char *message);

/* Argument readers: each returns false after throwing a TypeError. */
bool nv_arg_int32(napi_env env, napi_value value, const char *what, int32_t *out);
bool nv_arg_uint32(napi_env env, napi_value value, const char *what, uint32_t *out);
bool nv_arg_fd(napi_env env, napi_value value, int *out);
bool nv_arg_u64(napi_env env, napi_value value, const char *what, uint64_t *out);
bool nv_arg_bytes(napi_env env, napi_value value, const char *what, void **data, size_t *len);
/* Copies a JS string into a malloc'd NUL-terminated buffer (caller frees). */
bool nv_arg_string(napi_env env, napi_value value, const char *what, char **out);

napi_value nv_int32(napi_env env, int32_t v);
napi_value nv_u64(napi_env env, uint64_t v);
napi_value nv_bool(napi_env env, bool v);
napi_value nv_undefined(napi_env env);
/* Builds a JS array of numbers from `fds`. */
napi_value nv_fd_array(napi_env env, const int *fds, size_t count);

/* Fetches exactly `n` arguments (more are ignored, fewer throw). */
#define NV_ARGS(env, info, n, argv)                                                        \
  napi_value argv[n];                                                                      \
  do {                                                                                     \
    size_t nv_argc_ = (n);                                                                 \
    if (napi_get_cb_info((env), (info), &nv_argc_, argv, NULL, NULL) != napi_ok)           \
      return NULL;                                                                         \
    if (nv_argc_ < (n)) return nv_throw_type((env), "too few arguments");                  \
  } while (0)

/* Registration entry points of each source file. */
napi_status nv_init_fds(napi_env env, napi_value exports);
napi_status nv_init_eventfd(napi_env env, napi_value exports);
napi_status nv_init_scm(napi_env env, napi_value exports);
napi_status nv_init_memory(napi_env env, napi_value exports);
napi_status nv_init_watcher(napi_env env, napi_value exports);
napi_status nv_init_seals(napi_env env, napi_value exports);

/* Adds `fn` to `exports` as `name`. */
napi_status nv_export(napi_env env, napi_value exports, const char *name, napi_callback fn);

#endif
