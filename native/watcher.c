/*
 * Fd-readiness watcher: a libuv uv_poll_t on Node's own event loop (napi_get_uv_event_loop),
 * so a socket the addon owns is read with recvmsg only when the kernel says it is readable,
 * without libuv's stream code ever consuming its bytes (which would drop SCM_RIGHTS data).
 * The callback runs through napi_make_callback, so microtasks and exceptions behave as in any
 * Node I/O callback. Close the watcher before closing its fd (epoll keys on the fd).
 */
#include "common.h"

#include <errno.h>
#include <stdlib.h>
#include <uv.h>

typedef struct {
  uv_poll_t handle;
  napi_env env;
  napi_ref callback;
  napi_async_context context;
  bool closing;     /* watcherClose called */
  bool closed;      /* uv close callback ran */
  bool js_gone;     /* the JS wrapper was collected */
} nv_watcher;

static void free_if_done(nv_watcher *w) {
  if (w->closed && w->js_gone) free(w);
}

static void on_close(uv_handle_t *handle) {
  nv_watcher *w = handle->data;
  w->closed = true;
  free_if_done(w);
}

static void on_js_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  nv_watcher *w = data;
  w->js_gone = true;
  free_if_done(w);
}

/* Node-API itself broken inside a libuv callback: nothing is left to report to. */
static void fatal(const char *message) {
  napi_fatal_error("vfio-nvlink2 watcher", NAPI_AUTO_LENGTH, message, NAPI_AUTO_LENGTH);
}

/*
 * Calls the watcher's callback. No JS frame is below a libuv callback, so an error here (the
 * callback's own exception, or a failed N-API call, thrown by NV_CHECK) is raised as an
 * uncaught exception (napi_fatal_exception), as Node does for any I/O callback that throws.
 */
static void call_back(nv_watcher *w, int status, int events) {
  napi_env env = w->env;
  napi_value fn, recv, argv[2], result;
  NV_CHECK_OR(env, napi_get_reference_value(env, w->callback, &fn), );
  if (fn == NULL) return; /* the callback was collected: nobody to tell */
  NV_CHECK_OR(env, napi_get_global(env, &recv), );
  /* status is a negated errno (libuv on Unix); events are UV_READABLE / UV_WRITABLE bits. */
  NV_CHECK_OR(env, napi_create_int32(env, status, &argv[0]), );
  NV_CHECK_OR(env, napi_create_int32(env, events, &argv[1]), );
  NV_CHECK_OR(env, napi_make_callback(env, w->context, recv, fn, 2, argv, &result), );
}

static void on_poll(uv_poll_t *handle, int status, int events) {
  nv_watcher *w = handle->data;
  if (w->closing) return;
  napi_env env = w->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) fatal("napi_open_handle_scope failed");
  call_back(w, status, events);
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) != napi_ok) fatal("napi_is_exception_pending failed");
  if (pending) {
    napi_value error;
    if (napi_get_and_clear_last_exception(env, &error) != napi_ok ||
        napi_fatal_exception(env, error) != napi_ok)
      fatal("an exception in a watcher callback could not be raised");
  }
  if (napi_close_handle_scope(env, scope) != napi_ok) fatal("napi_close_handle_scope failed");
}

/* Stops for good: releases the callback and the async context and closes the handle (always,
 * whatever N-API says: the first failure is returned). */
static napi_status stop(nv_watcher *w) {
  w->closing = true;
  napi_status deleted = napi_delete_reference(w->env, w->callback);
  napi_status destroyed = napi_async_destroy(w->env, w->context);
  uv_close((uv_handle_t *)&w->handle, on_close);
  return deleted != napi_ok ? deleted : destroyed;
}

static bool unwrap(napi_env env, napi_value value, nv_watcher **out) {
  return nv_unwrap_tagged(env, value, &NV_TAG_WATCHER, "watcher", "a value returned by watchFd",
                          (void **)out);
}

/* watchFd(fd, events, callback(status, events)): starts watching; events 1 readable, 2 writable. */
static napi_value watch_fd(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 3, argv);
  int fd;
  uint32_t events;
  if (!nv_arg_fd(env, argv[0], &fd)) return NULL;
  if (!nv_arg_uint32(env, argv[1], "events", &events)) return NULL;
  napi_valuetype type;
  NV_CHECK(env, napi_typeof(env, argv[2], &type));
  if (type != napi_function) return nv_throw_type(env, "callback must be a function");
  struct uv_loop_s *loop;
  NV_CHECK(env, napi_get_uv_event_loop(env, &loop));
  /* Every JS value first, so that a failure leaves no half-made watcher behind. */
  napi_value obj, name;
  NV_CHECK(env, napi_create_object(env, &obj));
  NV_CHECK(env, napi_create_string_utf8(env, "vfio-nvlink2:watchFd", NAPI_AUTO_LENGTH, &name));
  nv_watcher *w = calloc(1, sizeof *w);
  if (w == NULL) return nv_throw_errno(env, "calloc", ENOMEM);
  w->env = env;
  napi_status s = napi_create_reference(env, argv[2], 1, &w->callback);
  if (s != napi_ok) {
    free(w);
    nv_throw_status(env, s, "napi_create_reference");
    return NULL;
  }
  s = napi_async_init(env, obj, name, &w->context);
  if (s != napi_ok) {
    napi_delete_reference(env, w->callback);
    free(w);
    nv_throw_status(env, s, "napi_async_init");
    return NULL;
  }
  int r = uv_poll_init(loop, &w->handle, fd);
  if (r < 0) { /* cleanup on a path that throws already: its own statuses cannot add to that */
    napi_delete_reference(env, w->callback);
    napi_async_destroy(env, w->context);
    free(w);
    return nv_throw_errno(env, "uv_poll_init", -r);
  }
  w->handle.data = w;
  /* From here the handle is live: only uv_close (then on_close) may free w. */
  s = napi_wrap(env, obj, w, on_js_finalize, NULL, NULL);
  if (s != napi_ok) {
    w->js_gone = true; /* not wrapped: no JS finalizer will ever run for it */
    stop(w);
    nv_throw_status(env, s, "napi_wrap");
    return NULL;
  }
  s = napi_type_tag_object(env, obj, &NV_TAG_WATCHER);
  if (s != napi_ok) {
    stop(w);
    nv_throw_status(env, s, "napi_type_tag_object");
    return NULL;
  }
  r = events ? uv_poll_start(&w->handle, (int)(events & (UV_READABLE | UV_WRITABLE)), on_poll) : 0;
  if (r < 0) {
    stop(w);
    return nv_throw_errno(env, "uv_poll_start", -r);
  }
  return obj;
}

/* watcherSet(watcher, events): changes what is watched; 0 pauses. */
static napi_value watcher_set(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 2, argv);
  nv_watcher *w;
  uint32_t events;
  if (!unwrap(env, argv[0], &w)) return NULL;
  if (!nv_arg_uint32(env, argv[1], "events", &events)) return NULL;
  if (w->closing) return nv_throw_errno(env, "uv_poll_start", EBADF);
  int r = events ? uv_poll_start(&w->handle, (int)(events & (UV_READABLE | UV_WRITABLE)), on_poll)
                 : uv_poll_stop(&w->handle);
  if (r < 0) return nv_throw_errno(env, "uv_poll_start", -r);
  return nv_undefined(env);
}

/* watcherRef(watcher, on): whether the watcher keeps the event loop (the process) alive. */
static napi_value watcher_ref(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 2, argv);
  nv_watcher *w;
  bool on;
  if (!unwrap(env, argv[0], &w)) return NULL;
  if (!nv_arg_bool(env, argv[1], "on", &on)) return NULL;
  if (w->closing) return nv_undefined(env);
  if (on) uv_ref((uv_handle_t *)&w->handle);
  else uv_unref((uv_handle_t *)&w->handle);
  return nv_undefined(env);
}

/* watcherClose(watcher): stops for good (idempotent); the fd may be closed right after. */
static napi_value watcher_close(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 1, argv);
  nv_watcher *w;
  if (!unwrap(env, argv[0], &w)) return NULL;
  if (w->closing) return nv_undefined(env);
  NV_CHECK(env, stop(w));
  return nv_undefined(env);
}

napi_status nv_init_watcher(napi_env env, napi_value exports) {
  napi_status s;
  if ((s = nv_export(env, exports, "watchFd", watch_fd)) != napi_ok) return s;
  if ((s = nv_export(env, exports, "watcherSet", watcher_set)) != napi_ok) return s;
  if ((s = nv_export(env, exports, "watcherRef", watcher_ref)) != napi_ok) return s;
  return nv_export(env, exports, "watcherClose", watcher_close);
}
