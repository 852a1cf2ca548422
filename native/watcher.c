/*
 * Fd-readiness watcher: a libuv uv_poll_t on Node's own event loop (napi_get_uv_event_loop),
 * so a socket the addon owns is read with recvmsg only when the kernel says it is readable,
 * without libuv's stream code ever consuming its bytes (which would drop SCM_RIGHTS data).
 * The callback runs through napi_make_callback, so microtasks and exceptions behave as in any
 * Node I/O callback. Close the watcher before closing its fd (epoll keys on the fd).
 */
#include "common.h"

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

static void on_poll(uv_poll_t *handle, int status, int events) {
  nv_watcher *w = handle->data;
  if (w->closing) return;
  napi_env env = w->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value fn, recv, argv[2], result;
  if (napi_get_reference_value(env, w->callback, &fn) == napi_ok && fn != NULL) {
    napi_get_global(env, &recv);
    /* status is a negated errno (libuv on Unix); events are UV_READABLE 1 / UV_WRITABLE 2. */
    napi_create_int32(env, status, &argv[0]);
    napi_create_int32(env, events, &argv[1]);
    if (napi_make_callback(env, w->context, recv, fn, 2, argv, &result) ==
        napi_pending_exception) {
      napi_value error;
      napi_get_and_clear_last_exception(env, &error);
      napi_fatal_exception(env, error);
    }
  }
  napi_close_handle_scope(env, scope);
}

static bool unwrap(napi_env env, napi_value value, nv_watcher **out) {
  if (napi_unwrap(env, value, (void **)out) != napi_ok || *out == NULL) {
    nv_throw_type(env, "watcher must be a value returned by watchFd");
    return false;
  }
  return true;
}

/* watchFd(fd, events, callback(status, events)): starts watching; events 1 readable, 2 writable. */
static napi_value watch_fd(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 3, argv);
  int fd;
  uint32_t events;
  if (!nv_arg_fd(env, argv[0], &fd)) return NULL;
  if (!nv_arg_uint32(env, argv[1], "events", &events)) return NULL;
  napi_valuetype type;
  napi_typeof(env, argv[2], &type);
  if (type != napi_function) return nv_throw_type(env, "callback must be a function");
  struct uv_loop_s *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return NULL;
  nv_watcher *w = calloc(1, sizeof *w);
  if (w == NULL) return nv_throw_errno(env, "calloc", 12);
  int r = uv_poll_init(loop, &w->handle, fd);
  if (r < 0) {
    free(w);
    return nv_throw_errno(env, "uv_poll_init", -r);
  }
  w->handle.data = w;
  w->env = env;
  napi_value obj, name;
  napi_create_object(env, &obj);
  napi_create_string_utf8(env, "vfio-nvlink2:watchFd", NAPI_AUTO_LENGTH, &name);
  napi_create_reference(env, argv[2], 1, &w->callback);
  napi_async_init(env, obj, name, &w->context);
  napi_wrap(env, obj, w, on_js_finalize, NULL, NULL);
  r = events ? uv_poll_start(&w->handle, (int)(events & (UV_READABLE | UV_WRITABLE)), on_poll) : 0;
  if (r < 0) {
    w->closing = true;
    napi_delete_reference(env, w->callback);
    napi_async_destroy(env, w->context);
    uv_close((uv_handle_t *)&w->handle, on_close);
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
  if (w->closing) return nv_throw_errno(env, "uv_poll_start", 9 /* EBADF */);
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
  if (napi_get_value_bool(env, argv[1], &on) != napi_ok) return nv_throw_type(env, "on must be a boolean");
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
  w->closing = true;
  napi_delete_reference(env, w->callback);
  napi_async_destroy(env, w->context);
  uv_close((uv_handle_t *)&w->handle, on_close);
  return nv_undefined(env);
}

napi_status nv_init_watcher(napi_env env, napi_value exports) {
  napi_status s;
  if ((s = nv_export(env, exports, "watchFd", watch_fd)) != napi_ok) return s;
  if ((s = nv_export(env, exports, "watcherSet", watcher_set)) != napi_ok) return s;
  if ((s = nv_export(env, exports, "watcherRef", watcher_ref)) != napi_ok) return s;
  return nv_export(env, exports, "watcherClose", watcher_close);
}
