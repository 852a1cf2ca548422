/*
 * Eventfds (eventfd(2)): create, write, read, and signal one a client handed over without ever
 * waiting for that client.
 *
 * A client shares the file description of every eventfd it sends (SCM_RIGHTS) and may clear
 * O_NONBLOCK on it at any time; an eventfd cannot be reopened as a description of our own
 * (open of /proc/self/fd/N on an anon inode is ENXIO). So neither our flag nor a poll first
 * rules out that a read(2) or write(2) waits until the client reads or writes. Around such a
 * call a per-thread timer sends a signal whose handler does nothing and that has no SA_RESTART:
 * a wait ends in EINTR within WAIT_LIMIT_NS. A call that does not wait is never cut short:
 * fs/eventfd.c eventfd_read/eventfd_write look at pending signals only inside their wait loop.
 */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

/* Longest a read or write on a client's eventfd may wait: 200 µs, then again every 200 µs. */
#define WAIT_LIMIT_NS 200000L

static int wake_signal; /* the real-time signal chosen (0: none free) */
static int wake_error;
static pthread_once_t wake_once = PTHREAD_ONCE_INIT;
static __thread timer_t wake_timer;
static __thread bool wake_timer_made;

static void on_wake(int sig) { (void)sig; }

/* The highest real-time signal nobody handles gets a do-nothing handler without SA_RESTART. */
static void choose_wake_signal(void) {
  for (int sig = SIGRTMAX; sig >= SIGRTMIN; sig--) {
    struct sigaction old;
    if (sigaction(sig, NULL, &old) < 0) continue;
    if ((old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL) continue;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_wake;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, NULL) < 0) {
      wake_error = errno;
      return;
    }
    wake_signal = sig;
    return;
  }
  wake_error = EAGAIN;
}

static void delete_wake_timer(void *arg) {
  (void)arg;
  if (!wake_timer_made) return;
  timer_delete(wake_timer);
  wake_timer_made = false;
}

/* This thread's timer (made once, deleted with the Node environment), its signal unblocked
 * here for good (nothing else sends it); 0 or an errno. */
static int thread_wake_timer(napi_env env) {
  pthread_once(&wake_once, choose_wake_signal);
  if (!wake_signal) return wake_error;
  if (wake_timer_made) return 0;
  sigset_t wake;
  sigemptyset(&wake);
  sigaddset(&wake, wake_signal);
  int err = pthread_sigmask(SIG_UNBLOCK, &wake, NULL);
  if (err) return err;
  struct sigevent ev;
  memset(&ev, 0, sizeof ev);
  ev.sigev_notify = SIGEV_THREAD_ID;
  ev.sigev_signo = wake_signal;
  ev.sigev_notify_thread_id = (pid_t)syscall(SYS_gettid);
  if (timer_create(CLOCK_MONOTONIC, &ev, &wake_timer) < 0) return errno;
  wake_timer_made = true;
  if (napi_add_env_cleanup_hook(env, delete_wake_timer, NULL) != napi_ok) {
    delete_wake_timer(NULL); /* not deleted with the environment: not kept */
    return ENOMEM;
  }
  return 0;
}

/* read(2) or write(2) of the 8-byte counter, a wait cut short: the byte count, or -1 with errno
 * (EINTR when it had to wait, EAGAIN when the description is non-blocking). */
static ssize_t bounded_io(napi_env env, int fd, uint64_t *value, bool writing) {
  int err = thread_wake_timer(env);
  if (err) {
    errno = err;
    return -1;
  }
  struct itimerspec on = {.it_interval = {0, WAIT_LIMIT_NS}, .it_value = {0, WAIT_LIMIT_NS}};
  struct itimerspec off;
  memset(&off, 0, sizeof off);
  ssize_t r = -1;
  if (timer_settime(wake_timer, 0, &on, NULL) < 0) {
    err = errno;
  } else {
    r = writing ? write(fd, value, sizeof *value) : read(fd, value, sizeof *value);
    err = errno;
    timer_settime(wake_timer, 0, &off, NULL); /* a signal already sent is handled on return */
  }
  errno = err;
  return r;
}

/* poll(2) of one fd without waiting: its revents, or -1 with errno (EBADF for POLLNVAL). */
static int poll_now(int fd, short events) {
  struct pollfd p = {.fd = fd, .events = events};
  int n;
  do n = poll(&p, 1, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0) return -1;
  if (p.revents & POLLNVAL) {
    errno = EBADF;
    return -1;
  }
  return p.revents;
}

/* eventfdCreate(initial, flags): eventfd(2) with EFD_CLOEXEC always added; flags may carry
 * EFD_NONBLOCK (04000) and EFD_SEMAPHORE (1). */
static napi_value eventfd_create(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 2, argv);
  uint32_t initial, flags;
  if (!nv_arg_uint32(env, argv[0], "initial", &initial)) return NULL;
  if (!nv_arg_uint32(env, argv[1], "flags", &flags)) return NULL;
  if (flags & ~(uint32_t)(EFD_NONBLOCK | EFD_SEMAPHORE)) return nv_throw_errno(env, "eventfd", EINVAL);
  int fd = eventfd(initial, (int)flags | EFD_CLOEXEC);
  if (fd < 0) return nv_throw_errno(env, "eventfd", errno);
  return nv_int32(env, fd);
}

/* eventfdWrite(fd, value): adds value to the counter, waiting while it does not fit on a
 * blocking eventfd; throws EAGAIN if it would overflow on a non-blocking one. For eventfds of
 * our own; a client's is signalled with eventfdSignal. */
static napi_value eventfd_write_fn(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 2, argv);
  int fd;
  uint64_t value;
  if (!nv_arg_fd(env, argv[0], &fd)) return NULL;
  if (!nv_arg_u64(env, argv[1], "value", &value)) return NULL;
  ssize_t r;
  do r = write(fd, &value, sizeof value);
  while (r < 0 && errno == EINTR);
  if (r < 0) return nv_throw_errno(env, "write", errno);
  return nv_undefined(env);
}

/* eventfdSignal(fd, value): fs/eventfd.c eventfd_signal() from user space, for an eventfd a
 * client handed over: adds value when it fits and never waits. true when added; false when the
 * counter is too full to take it (the kernel saturates at ULLONG_MAX, write(2) can reach only
 * ULLONG_MAX - 1: either way the counter stays readable and the reader wakes). */
static napi_value eventfd_signal_fn(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 2, argv);
  int fd;
  uint64_t value;
  if (!nv_arg_fd(env, argv[0], &fd)) return NULL;
  if (!nv_arg_u64(env, argv[1], "value", &value)) return NULL;
  /* eventfd_poll: no EPOLLOUT once the counter is ULLONG_MAX - 1; the common full case costs
   * no timer. */
  int revents = poll_now(fd, POLLOUT);
  if (revents < 0) return nv_throw_errno(env, "poll", errno);
  if (!(revents & POLLOUT)) return nv_bool(env, false);
  ssize_t r = bounded_io(env, fd, &value, true);
  if (r == (ssize_t)sizeof value) return nv_bool(env, true);
  if (r < 0 && (errno == EINTR || errno == EAGAIN)) return nv_bool(env, false);
  if (r < 0) return nv_throw_errno(env, "write", errno);
  return nv_throw_errno(env, "write", EIO);
}

/* eventfdRead(fd): the counter (reset to 0), or null when it is 0. Never waits, even on an
 * eventfd whose description is blocking and shared with another process: polls first, and a
 * read that waits anyway (the other process read in between) is cut short. */
static napi_value eventfd_read_fn(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 1, argv);
  int fd;
  if (!nv_arg_fd(env, argv[0], &fd)) return NULL;
  napi_value null_value;
  NV_CHECK(env, napi_get_null(env, &null_value));
  int revents = poll_now(fd, POLLIN);
  if (revents < 0) return nv_throw_errno(env, "poll", errno);
  if (!(revents & POLLIN)) return null_value;
  uint64_t value;
  ssize_t r = bounded_io(env, fd, &value, false);
  if (r < 0 && (errno == EINTR || errno == EAGAIN)) return null_value;
  if (r < 0) return nv_throw_errno(env, "read", errno);
  if (r != sizeof value) return nv_throw_errno(env, "read", EIO);
  return nv_u64(env, value);
}

napi_status nv_init_eventfd(napi_env env, napi_value exports) {
  napi_status s;
  if ((s = nv_export(env, exports, "eventfdCreate", eventfd_create)) != napi_ok) return s;
  if ((s = nv_export(env, exports, "eventfdWrite", eventfd_write_fn)) != napi_ok) return s;
  if ((s = nv_export(env, exports, "eventfdSignal", eventfd_signal_fn)) != napi_ok) return s;
  return nv_export(env, exports, "eventfdRead", eventfd_read_fn);
}
