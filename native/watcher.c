/*
 * Fd-readiness watcher: a libuv uv_poll_t on Node's own event loop (napi_get_uv_event_loop),
 * so a socket the addon owns is read with recvmsg only when the kernel says it is readable,
 * without libuv's stream code ever consuming its bytes (which would drop SCM_RIGHTS data).
 * The callback runs through napi_make_callback, so microtasks and exceptions behave as in any
 * Node I/O callback. Close the watcher before closing its fd (epoll keys on the fd).
 */
#define _GNU_SOURCE
#include "common.h"
#include "fastpath.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

/* Reads per readiness callback on the fast path (as the JS connection's READS_PER_WAKEUP). */
#define FAST_READS_PER_WAKEUP 64

typedef struct {
  uv_poll_t handle;
  napi_env env;
  napi_ref callback;
  napi_async_context context;
  bool closing;     /* watcherClose called */
  bool closed;      /* uv close callback ran */
  bool js_gone;     /* the JS wrapper was collected */
  int fd;
  int js_events;    /* what JS asked to watch (watcherSet); a waiting fast reply overrides it */
  /* The fast path (watcherFast): the table, JS's receive buffer, the control slots. */
  nv_fast_table *fast;
  napi_ref fast_ref;
  napi_ref retired_ref; /* a table replaced while its reply waited: kept until it went */
  uint8_t *scratch;
  size_t scratch_len;
  napi_ref scratch_ref;
  int32_t *control;
  napi_ref control_ref;
  uint32_t max_fds;
  nv_fast_buffer buf;
  nv_fast_out out;      /* a fast reply the socket did not take whole */
  bool waiting;         /* out holds a reply: reading stops until it went */
  bool receiving;       /* body: a REGION_WRITE's data comes straight into place */
  nv_fast_body body;
  size_t held_from, held_end; /* scratch bytes read after it, JS's once it went */
} nv_watcher;

/* Deletes *ref if set (cleanup: nothing left to report a failure to). */
static void drop_ref(napi_env env, napi_ref *ref) {
  if (*ref != NULL) napi_delete_reference(env, *ref);
  *ref = NULL;
}

static void free_if_done(nv_watcher *w) {
  if (!w->closed || !w->js_gone) return;
  free(w->buf.data);
  free(w->buf.zeros);
  free(w);
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

static void on_poll_cb(uv_poll_t *handle, int status, int events);

/* Node-API itself broken inside a libuv callback: nothing is left to report to. */
static void fatal(const char *message) {
  napi_fatal_error("vfio-nvlink2 watcher", NAPI_AUTO_LENGTH, message, NAPI_AUTO_LENGTH);
}

/*
 * Calls the watcher's callback. No JS frame is below a libuv callback, so an error here (the
 * callback's own exception, or a failed N-API call, thrown by NV_CHECK) is raised as an
 * uncaught exception (napi_fatal_exception), as Node does for any I/O callback that throws.
 */
static void call_back(nv_watcher *w, int status, int events, napi_value handoff) {
  /* Closed by an earlier callback of this same wakeup: its references are gone. */
  if (w->closing) return;
  napi_env env = w->env;
  napi_value fn, recv, argv[3], result;
  NV_CHECK_OR(env, napi_get_reference_value(env, w->callback, &fn), );
  if (fn == NULL) return; /* the callback was collected: nobody to tell */
  NV_CHECK_OR(env, napi_get_global(env, &recv), );
  /* status is a negated errno (libuv on Unix); events are UV_READABLE / UV_WRITABLE bits. */
  NV_CHECK_OR(env, napi_create_int32(env, status, &argv[0]), );
  NV_CHECK_OR(env, napi_create_int32(env, events, &argv[1]), );
  size_t argc = 2;
  if (handoff != NULL) argv[argc++] = handoff;
  NV_CHECK_OR(env, napi_make_callback(env, w->context, recv, fn, argc, argv, &result), );
}

/*
 * What the fast path hands to JS with the callback's third argument: JS's receive buffer holds
 * bytes read in [0, end), of which [from, end) are not handled (JS frames them first, with
 * `fds`, as if it had read them); `recvErrno` a failed recvmsg (nothing read), `sendErrno` a
 * fast reply that could not be sent, `bodyError` a REGION_WRITE whose data stopped coming in
 * (-1 the end of the stream, -2 fds truncated, else the errno). NULL after throwing (the fds are
 * closed then).
 */
static napi_value make_handoff(napi_env env, size_t from, size_t end, const int *fds,
                               size_t fd_count, bool truncated, int recv_errno, int send_errno,
                               int body_error) {
  napi_value obj;
  napi_value fd_array = NULL;
  if (napi_create_object(env, &obj) != napi_ok ||
      (fd_array = nv_fd_array(env, fds, fd_count)) == NULL) {
    for (size_t i = 0; i < fd_count; i++) close(fds[i]);
    return NULL;
  }
  if (!nv_set(env, obj, "from", nv_double(env, (double)from)) ||
      !nv_set(env, obj, "end", nv_double(env, (double)end)) || !nv_set(env, obj, "fds", fd_array) ||
      !nv_set(env, obj, "truncatedControl", nv_bool(env, truncated)) ||
      !nv_set(env, obj, "recvErrno", nv_int32(env, recv_errno)) ||
      !nv_set(env, obj, "sendErrno", nv_int32(env, send_errno)) ||
      !nv_set(env, obj, "bodyError", nv_int32(env, body_error))) {
    for (size_t i = 0; i < fd_count; i++) close(fds[i]);
    return NULL;
  }
  return obj;
}

/* Starts watching what JS asked for, or WRITABLE alone while a fast reply waits. */
static int apply_events(nv_watcher *w) {
  int events = w->waiting ? UV_WRITABLE : w->js_events;
  return events ? uv_poll_start(&w->handle, events, on_poll_cb) : uv_poll_stop(&w->handle);
}

/* Calls JS with a handoff (or none when it could not be made: the exception is raised). */
static void hand_off(nv_watcher *w, int status, int events, size_t from, size_t end,
                     const int *fds, size_t fd_count, bool truncated, int recv_errno,
                     int send_errno) {
  if (w->closing) { /* nobody to take them */
    for (size_t i = 0; i < fd_count; i++) close(fds[i]);
    return;
  }
  napi_value h =
      make_handoff(w->env, from, end, fds, fd_count, truncated, recv_errno, send_errno, 0);
  if (h != NULL) call_back(w, status, events, h);
}

/* Whether the fast path may run now: a table, JS's gate open, no tracepoint listened to. */
static bool fast_open(const nv_watcher *w) {
  return w->fast != NULL && !w->waiting && !w->receiving &&
         __atomic_load_n(&w->control[NV_FAST_GATE], __ATOMIC_RELAXED) == 1 &&
         !nv_fast_tracing(w->fast);
}

/* A fast reply waits in w->out: watch WRITABLE alone until it went; false if libuv refused
 * (then JS gets the rest with the failure as a send error and ends the connection). */
static bool start_waiting(nv_watcher *w, size_t held_from, size_t held_end) {
  w->waiting = true;
  w->held_from = held_from;
  w->held_end = held_end;
  __atomic_store_n(&w->control[NV_FAST_PENDING], 1, __ATOMIC_RELAXED);
  int r = apply_events(w);
  if (r == 0) return true;
  w->waiting = false;
  w->out.count = 0;
  __atomic_store_n(&w->control[NV_FAST_PENDING], 0, __ATOMIC_RELAXED);
  hand_off(w, 0, UV_READABLE, held_from, held_end, NULL, 0, false, 0, -r);
  return false;
}

/* The body's receive ended: the stream is dead inside a message (JS closes it). */
static void body_failed(nv_watcher *w, int status, int events, int body_error) {
  w->receiving = false;
  __atomic_store_n(&w->control[NV_FAST_RECEIVING], 0, __ATOMIC_RELAXED);
  drop_ref(w->env, &w->retired_ref);
  napi_value h = make_handoff(w->env, 0, 0, NULL, 0, false, 0, 0, body_error);
  if (h != NULL) call_back(w, status, events, h);
}

/*
 * Receives a REGION_WRITE's data straight into place until it is all in (then replies, and
 * the fast path goes on at the next readiness) or the socket is empty (the next READABLE goes
 * on). fds that come with it are closed, as JS closes those of a REGION_WRITE.
 */
static void receive_body(nv_watcher *w, int events) {
  nv_scm_control control;
  nv_fast_body *b = &w->body;
  while (b->left > 0) {
    struct iovec iov = {.iov_base = b->dst, .iov_len = b->left};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    ssize_t r = recvmsg(w->fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      body_failed(w, 0, events, errno);
      return;
    }
    nv_take_fds(&msg, NULL, 0);
    if (r == 0) {
      body_failed(w, 0, events, -1);
      return;
    }
    if (msg.msg_flags & MSG_CTRUNC) {
      body_failed(w, 0, events, -2);
      return;
    }
    size_t asked = b->left;
    b->dst += r;
    b->left -= (size_t)r;
    __atomic_add_fetch(&w->control[NV_FAST_PROGRESS], 1, __ATOMIC_RELAXED);
    /* short: the socket is most likely empty; epoll (level-triggered) says when it is not,
     * which spares the EAGAIN read */
    if ((size_t)r < asked && b->left > 0) return;
  }
  w->receiving = false;
  __atomic_store_n(&w->control[NV_FAST_RECEIVING], 0, __ATOMIC_RELAXED);
  int send_errno = 0;
  nv_fast_result res = nv_fast_body_done(w->fd, b, &w->out, &send_errno, w->control);
  if (res == NV_FAST_WAIT) {
    start_waiting(w, 0, 0);
    return;
  }
  drop_ref(w->env, &w->retired_ref);
  if (res == NV_FAST_SEND_FAIL) hand_off(w, 0, events, 0, 0, NULL, 0, false, 0, send_errno);
}

/*
 * Reads and serves requests while they are fast ones; the first that is not (and the rest of
 * its chunk) goes to JS with the callback, as does anything unusual (fds, errors, the end).
 */
static void fast_drain(nv_watcher *w, int events) {
  nv_scm_control control;
  for (int i = 0; i < FAST_READS_PER_WAKEUP; i++) {
    struct iovec iov = {.iov_base = w->scratch, .iov_len = w->scratch_len};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    if (w->max_fds > 0) {
      msg.msg_control = control.buf;
      msg.msg_controllen = CMSG_SPACE(sizeof(int) * w->max_fds);
    }
    ssize_t r;
    do r = recvmsg(w->fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      hand_off(w, 0, events, 0, 0, NULL, 0, false, errno, 0);
      return;
    }
    if (r == 0) { /* end of stream: JS reads it again and closes */
      call_back(w, 0, events, NULL);
      return;
    }
    bool truncated = (msg.msg_flags & MSG_CTRUNC) != 0;
    if (msg.msg_controllen > 0 || truncated) {
      /* fds came: they belong to the chunk's last byte; JS frames it all as it always did */
      int fds[NV_SCM_MAX_FD];
      size_t n = nv_take_fds(&msg, fds, truncated ? 0 : NV_SCM_MAX_FD);
      hand_off(w, 0, events, 0, (size_t)r, fds, n, truncated, 0, 0);
      return;
    }
    size_t at = 0;
    while (at < (size_t)r) {
      size_t size = 0;
      int send_errno = 0;
      nv_fast_result res = nv_fast_serve(w->fast, w->fd, w->scratch + at, (size_t)r - at, &size,
                                         &w->buf, &w->out, &send_errno, w->control, &w->body);
      if (res == NV_FAST_NOT) break;
      at += size;
      if (res == NV_FAST_BODY) { /* the chunk ended inside it: the rest comes into place */
        w->receiving = true;
        __atomic_store_n(&w->control[NV_FAST_RECEIVING], 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&w->control[NV_FAST_PROGRESS], 1, __ATOMIC_RELAXED);
        receive_body(w, events);
        return;
      }
      if (res == NV_FAST_WAIT) {
        start_waiting(w, at, (size_t)r);
        return;
      }
      if (res == NV_FAST_SEND_FAIL) {
        hand_off(w, 0, events, at, (size_t)r, NULL, 0, false, 0, send_errno);
        return;
      }
    }
    if (at < (size_t)r) {
      hand_off(w, 0, events, at, (size_t)r, NULL, 0, false, 0, 0);
      return;
    }
    if ((size_t)r < w->scratch_len) return; /* drained: level-triggered epoll wakes us again */
  }
}

/* A waiting fast reply: sends on WRITABLE; once it went, JS watches again and gets the rest. */
static void on_waiting(nv_watcher *w, int status, int events) {
  int send_errno = 0;
  if (status >= 0) {
    if (!(events & UV_WRITABLE)) return;
    int r = nv_fast_flush(w->fd, &w->out);
    if (r == 0) return;
    if (r < 0) send_errno = -r;
  }
  w->waiting = false;
  w->out.count = 0;
  __atomic_store_n(&w->control[NV_FAST_PENDING], 0, __ATOMIC_RELAXED);
  drop_ref(w->env, &w->retired_ref);
  if (status >= 0 && send_errno == 0) {
    int r = apply_events(w);
    if (r < 0) send_errno = -r;
  }
  size_t from = w->held_from, end = w->held_end;
  w->held_from = w->held_end = 0;
  /* JS's turn: the bytes read after the reply, a failed send, a poll error, or what it waits
   * for (its own replies queued meanwhile: WRITABLE is watched again and fires). */
  if (from < end || send_errno != 0)
    hand_off(w, status, status < 0 ? events : 0, from, end, NULL, 0, false, 0, send_errno);
  else if (status < 0) call_back(w, status, events, NULL);
}

static void on_poll_cb(uv_poll_t *handle, int status, int events) {
  nv_watcher *w = handle->data;
  if (w->closing) return;
  napi_env env = w->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) fatal("napi_open_handle_scope failed");
  if (w->waiting) on_waiting(w, status, events);
  else if (w->receiving) {
    if (status >= 0) {
      if (events & UV_READABLE) receive_body(w, events);
    } else { /* the peer left: what it sent is still here, read it; JS reads on after it */
      receive_body(w, UV_READABLE);
      if (w->receiving) body_failed(w, status, events, -1);
      else if (!w->waiting) call_back(w, status, events, NULL);
    }
  } else if (status == 0 && events == UV_READABLE && fast_open(w)) fast_drain(w, events);
  else call_back(w, status, events, NULL);
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
  w->fast = NULL;
  w->waiting = false;
  w->receiving = false;
  drop_ref(w->env, &w->fast_ref);
  drop_ref(w->env, &w->retired_ref);
  drop_ref(w->env, &w->scratch_ref);
  drop_ref(w->env, &w->control_ref);
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
  w->fd = fd;
  w->js_events = (int)(events & (UV_READABLE | UV_WRITABLE));
  napi_status s = napi_create_reference(env, argv[2], 1, &w->callback);
  if (s != napi_ok) {
    free(w);
    nv_throw_status(env, s, "napi_create_reference");
    return NULL;
  }
  s = napi_async_init(env, obj, name, &w->context);
  if (s != napi_ok) { /* cleanup on a path that throws already: its own status cannot add to that */
    (void)napi_delete_reference(env, w->callback);
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
  r = events ? uv_poll_start(&w->handle, (int)(events & (UV_READABLE | UV_WRITABLE)), on_poll_cb) : 0;
  if (r < 0) {
    stop(w);
    return nv_throw_errno(env, "uv_poll_start", -r);
  }
  return obj;
}

/* watcherSet(watcher, events): changes what is watched; 0 pauses. While a fast reply waits,
 * it is kept and applied once the reply went. */
static napi_value watcher_set(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 2, argv);
  nv_watcher *w;
  uint32_t events;
  if (!unwrap(env, argv[0], &w)) return NULL;
  if (!nv_arg_uint32(env, argv[1], "events", &events)) return NULL;
  if (w->closing) return nv_throw_errno(env, "uv_poll_start", EBADF);
  w->js_events = (int)(events & (UV_READABLE | UV_WRITABLE));
  int r = apply_events(w);
  if (r < 0) return nv_throw_errno(env, "uv_poll_start", -r);
  return nv_undefined(env);
}

/* An Int32Array argument of at least `min` elements. */
static bool arg_int32_array(napi_env env, napi_value value, const char *what, size_t min,
                            int32_t **out) {
  bool typed;
  NV_CHECK_BOOL(env, napi_is_typedarray(env, value, &typed));
  napi_typedarray_type type = napi_uint8_array;
  size_t length = 0;
  void *data = NULL;
  if (typed) NV_CHECK_BOOL(env, napi_get_typedarray_info(env, value, &type, &length, &data, NULL, NULL));
  if (!typed || type != napi_int32_array || length < min) {
    nv_throw_type(env, what);
    return false;
  }
  *out = data;
  return true;
}

/*
 * watcherFast(watcher, table | null, scratch: Uint8Array, control: Int32Array, maxFds): serves
 * the table's plain ranges natively from now on while control[GATE] is 1 (fastpath.h);
 * received bytes go to `scratch` (JS's receive buffer: a handoff names what JS must frame).
 * null detaches. A reply still waiting keeps its table alive until it went.
 */
static napi_value watcher_fast(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 5, argv);
  nv_watcher *w;
  if (!unwrap(env, argv[0], &w)) return NULL;
  if (w->closing) return nv_throw_errno(env, "watcherFast", EBADF);
  napi_valuetype type;
  NV_CHECK(env, napi_typeof(env, argv[1], &type));
  nv_fast_table *t = NULL;
  if (type != napi_null && !nv_fast_unwrap(env, argv[1], &t)) return NULL;
  void *scratch;
  size_t scratch_len;
  int32_t *control;
  uint32_t max_fds;
  if (!nv_arg_bytes(env, argv[2], "scratch", &scratch, &scratch_len)) return NULL;
  if (scratch_len == 0) return nv_throw_type(env, "scratch must not be empty");
  if (!arg_int32_array(env, argv[3], "control must be an Int32Array of 6 or more", NV_FAST_SLOTS,
                       &control))
    return NULL;
  if (!nv_arg_uint32(env, argv[4], "maxFds", &max_fds)) return NULL;
  if (max_fds > NV_SCM_MAX_FD) max_fds = NV_SCM_MAX_FD;
  /* Every new reference first: a failure leaves the watcher as it was. */
  napi_ref table_ref = NULL, scratch_ref = NULL, control_ref = NULL;
  napi_status s = t != NULL ? napi_create_reference(env, argv[1], 1, &table_ref) : napi_ok;
  if (s == napi_ok) s = napi_create_reference(env, argv[2], 1, &scratch_ref);
  if (s == napi_ok) s = napi_create_reference(env, argv[3], 1, &control_ref);
  if (s != napi_ok) {
    drop_ref(env, &table_ref);
    drop_ref(env, &scratch_ref);
    drop_ref(env, &control_ref);
    nv_throw_status(env, s, "napi_create_reference");
    return NULL;
  }
  /* A waiting reply may point into the current table (its mapping, its config bytes). */
  bool busy = w->waiting || w->receiving;
  if (busy && w->retired_ref == NULL) w->retired_ref = w->fast_ref;
  else drop_ref(env, &w->fast_ref);
  w->fast_ref = table_ref;
  w->fast = t;
  if (!busy) { /* a waiting reply's or a body's control slot and scratch stay until done */
    drop_ref(env, &w->scratch_ref);
    drop_ref(env, &w->control_ref);
    w->scratch_ref = scratch_ref;
    w->control_ref = control_ref;
    w->scratch = scratch;
    w->scratch_len = scratch_len;
    w->control = control;
  } else {
    drop_ref(env, &scratch_ref);
    drop_ref(env, &control_ref);
  }
  w->max_fds = max_fds;
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
  if ((s = nv_export(env, exports, "watcherFast", watcher_fast)) != napi_ok) return s;
  return nv_export(env, exports, "watcherClose", watcher_close);
}
