/*
 * Shared helpers of the vfio-nvlink2 native addon: argument parsing, errno-carrying errors,
 * N-API status checks and type tags for plain Node-API (node_api.h). Every syscall failure
 * becomes a JS Error with `code` (the errno name, as Node's own fs errors: "ENOENT"), `errno`
 * (the positive Linux number) and `syscall`; every failed N-API call becomes a JS Error naming
 * the call (code ERR_NATIVE_NAPI), never a silent `undefined` or a crash.
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
#include <sys/socket.h>

/* The kernel's per-message cap on SCM_RIGHTS fds (include/net/scm.h SCM_MAX_FD). */
#define NV_SCM_MAX_FD 253
/* A control buffer for the most SCM_RIGHTS fds of one message, aligned for cmsghdr. */
typedef union {
  char buf[CMSG_SPACE(sizeof(int) * NV_SCM_MAX_FD)];
  struct cmsghdr align;
} nv_scm_control;
/* Most parts one sendMessage gathers (sendmsg iovecs). */
#define NV_MAX_IOV 64
/* Node 20's Buffer/ArrayBuffer cap (buffer.constants.MAX_LENGTH): larger regions go in windows. */
#define NV_MAX_WINDOW (UINT64_C(1) << 32)

/* Throws an Error for `err` (an errno value) raised by `syscall`; returns NULL for convenience. */
napi_value nv_throw_errno(napi_env env, const char *syscall, int err);
/* Throws a TypeError with `message`; returns NULL. */
napi_value nv_throw_type(napi_env env, const char *message);
/*
 * Throws an Error for the N-API call `call` that returned `status`, with N-API's own message
 * (napi_get_last_error_info), unless an exception is already pending (the call's own, e.g. a
 * getter that threw): that one is kept.
 */
void nv_throw_status(napi_env env, napi_status status, const char *call);

/*
 * Evaluates an N-API call; on failure throws (nv_throw_status) and returns from the enclosing
 * function: NULL from a napi_callback (NV_CHECK), false from a bool helper (NV_CHECK_BOOL), the
 * status from an init function (NV_CHECK_STATUS).
 */
#define NV_CHECK_OR(env, call, failed)                                                     \
  do {                                                                                     \
    napi_status nv_s_ = (call);                                                            \
    if (nv_s_ != napi_ok) {                                                                \
      nv_throw_status((env), nv_s_, #call);                                                \
      return failed;                                                                       \
    }                                                                                      \
  } while (0)
#define NV_CHECK(env, call) NV_CHECK_OR(env, call, NULL)
#define NV_CHECK_BOOL(env, call) NV_CHECK_OR(env, call, false)
#define NV_CHECK_STATUS(env, call)                                                         \
  do {                                                                                     \
    napi_status nv_s2_ = (call);                                                           \
    if (nv_s2_ != napi_ok) {                                                               \
      nv_throw_status((env), nv_s2_, #call);                                               \
      return nv_s2_;                                                                       \
    }                                                                                      \
  } while (0)

/*
 * Type tags (napi_type_tag_object): every object the addon hands out wrapping a C struct
 * carries the tag of its kind, and every function taking one back checks the tag before it
 * unwraps, so a mapping passed where a watcher is expected is a TypeError, not a wild pointer.
 */
extern const napi_type_tag NV_TAG_MAPPING;
extern const napi_type_tag NV_TAG_WATCHER;
/* Wraps `data` in `object` and tags it `tag` (throws and returns false on failure). */
bool nv_wrap_tagged(napi_env env, napi_value object, const napi_type_tag *tag, void *data,
                    napi_finalize finalize);
/*
 * The struct wrapped in `value` if it carries `tag`; otherwise throws a TypeError
 * "`what` must be `expected`" and returns false.
 */
bool nv_unwrap_tagged(napi_env env, napi_value value, const napi_type_tag *tag, const char *what,
                      const char *expected, void **out);

/* Argument readers: each returns false after throwing a TypeError. */
bool nv_arg_int32(napi_env env, napi_value value, const char *what, int32_t *out);
bool nv_arg_uint32(napi_env env, napi_value value, const char *what, uint32_t *out);
bool nv_arg_fd(napi_env env, napi_value value, int *out);
bool nv_arg_u64(napi_env env, napi_value value, const char *what, uint64_t *out);
bool nv_arg_bool(napi_env env, napi_value value, const char *what, bool *out);
bool nv_arg_bytes(napi_env env, napi_value value, const char *what, void **data, size_t *len);
/* Copies a JS string into a malloc'd NUL-terminated buffer (caller frees). */
bool nv_arg_string(napi_env env, napi_value value, const char *what, char **out);

/* Value makers: NULL after throwing (a failed N-API call). */
napi_value nv_int32(napi_env env, int32_t v);
napi_value nv_double(napi_env env, double v);
napi_value nv_u64(napi_env env, uint64_t v);
napi_value nv_bool(napi_env env, bool v);
napi_value nv_null(napi_env env);
napi_value nv_undefined(napi_env env);
/* The number of a descriptor just created; if even that fails, closes it (no leak). */
napi_value nv_new_fd(napi_env env, int fd);
/*
 * The fds of every SCM_RIGHTS message in `msg`'s control data (unix(7), cmsg(3)): the first
 * `max` go into `out` and their count is returned, the rest are closed (all of them with
 * `max` 0, `out` may then be NULL), so none is ever left open unseen.
 */
size_t nv_take_fds(struct msghdr *msg, int *out, size_t max);
/* Builds a JS array of numbers from `fds`. */
napi_value nv_fd_array(napi_env env, const int *fds, size_t count);
/* Sets obj[name] = value; false after throwing (also when `value` is NULL: already thrown). */
bool nv_set(napi_env env, napi_value obj, const char *name, napi_value value);

/* Fetches exactly `n` arguments (more are ignored, fewer throw). */
#define NV_ARGS(env, info, n, argv)                                                        \
  napi_value argv[n];                                                                      \
  do {                                                                                     \
    size_t nv_argc_ = (n);                                                                 \
    NV_CHECK((env), napi_get_cb_info((env), (info), &nv_argc_, argv, NULL, NULL));         \
    if (nv_argc_ < (n)) return nv_throw_type((env), "too few arguments");                  \
  } while (0)

/* Registration entry points of each source file. */
napi_status nv_init_fds(napi_env env, napi_value exports);
napi_status nv_init_eventfd(napi_env env, napi_value exports);
napi_status nv_init_scm(napi_env env, napi_value exports);
napi_status nv_init_memory(napi_env env, napi_value exports);
napi_status nv_init_digest(napi_env env, napi_value exports);
napi_status nv_init_hash(napi_env env, napi_value exports);
napi_status nv_init_watcher(napi_env env, napi_value exports);
napi_status nv_init_fastpath(napi_env env, napi_value exports);
napi_status nv_init_relay(napi_env env, napi_value exports);
napi_status nv_init_seals(napi_env env, napi_value exports);
napi_status nv_init_copy(napi_env env, napi_value exports);
napi_status nv_init_constants(napi_env env, napi_value exports);

/* Adds `fn` to `exports` as `name`. */
napi_status nv_export(napi_env env, napi_value exports, const char *name, napi_callback fn);

/*
 * A promise settled by work on libuv's threadpool: queues `execute` then `complete` with `data`
 * (async resource `name`), keeping the deferred and the work in *deferred and *work for
 * `complete`. The promise, or NULL after throwing (nothing queued: the caller frees `data`).
 */
napi_value nv_queue_promise_work(napi_env env, const char *name, napi_async_execute_callback execute,
                                 napi_async_complete_callback complete, void *data,
                                 napi_deferred *deferred, napi_async_work *work);
/*
 * From a `complete`: resolves `deferred` with `result` when `built`; otherwise rejects it with the
 * pending exception, or an Error "`who`: cannot build its outcome". A promise that cannot be
 * settled at all ends the process (napi_fatal_error): its caller would wait for ever.
 */
void nv_settle(napi_env env, napi_deferred deferred, bool built, napi_value result, const char *who);

#endif
