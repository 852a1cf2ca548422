/*
 * The stop-copy relay of a migration (src/vfio-user/client/migrate-device.ts): MIG_DATA_READ
 * replies of a source server go to a destination server as MIG_DATA_WRITE requests
 * (docs/interop/vfio-user.rst "VFIO_USER_MIG_DATA_READ/WRITE"), their data moved with splice(2)
 * through a pipe (pages handed on, not copied through this process: one copy per byte less on
 * each side, and no JavaScript per message). Run on a worker thread (napi async work) while the
 * two connections' JavaScript readers are paused; up to `readAhead` reads and `writesInFlight`
 * writes outstanding, replies taken in order and checked (msg_id, command, reply type, size);
 * the first error reply, closed socket, malformed reply or reply timeout ends it, naming the
 * end. Measured on the 2-vCPU VM of issue 8: a 1 GiB relay through two unix sockets costs
 * 40 ms of CPU by splice, 113–163 ms by read/write (before any JavaScript).
 */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HEAD 16           /* vfio_user_header */
#define DATA_HEAD 8       /* MIG_DATA_READ/WRITE: argsz u32, size u32 */
#define CMD_READ 17       /* VFIO_USER_MIG_DATA_READ */
#define CMD_WRITE 18      /* VFIO_USER_MIG_DATA_WRITE */
#define TYPE_MASK 0xf     /* flags: message type */
#define TYPE_REPLY 1
#define FLAG_ERROR 0x20
#define MAX_IN_FLIGHT 64

enum { END_NONE = 0, END_SOURCE = 1, END_DESTINATION = 2 };
enum { KIND_NONE = 0, KIND_REPLY, KIND_CLOSED, KIND_TIMEOUT, KIND_MALFORMED, KIND_SYSCALL };

typedef struct {
  /* in */
  int src, dst;
  uint32_t chunk, read_ahead, writes_in_flight;
  uint64_t max_bytes;
  uint16_t msg_id;
  int src_timeout_ms, dst_timeout_ms; /* < 0: none */
  /* out */
  uint64_t bytes;
  bool ended;
  uint16_t next_msg_id;
  uint16_t failed_msg_id; /* the message a failure concerns (kind != 0) */
  int end, kind, err; /* err: the errno (reply's, syscall's, ETIMEDOUT, EIO) */
  char what[160];
  /* napi */
  napi_async_work work;
  napi_deferred deferred;
} relay_job;

static int64_t now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static bool fail(relay_job *j, int end, int kind, int err, const char *what) {
  j->end = end;
  j->kind = kind;
  j->err = err;
  snprintf(j->what, sizeof j->what, "%s", what);
  return false;
}

/* Waits until `fd` has `events`; false (the job failed) after its end's timeout or on error. */
static bool wait_for(relay_job *j, int fd, short events, int end) {
  int timeout = end == END_SOURCE ? j->src_timeout_ms : j->dst_timeout_ms;
  int64_t deadline = timeout < 0 ? -1 : now_ms() + timeout;
  for (;;) {
    int left = deadline < 0 ? -1 : (int)(deadline - now_ms());
    if (deadline >= 0 && left < 0) left = 0;
    struct pollfd p = {.fd = fd, .events = events};
    int n = poll(&p, 1, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(j, end, KIND_SYSCALL, errno, "poll");
    if (n == 0)
      return fail(j, end, KIND_TIMEOUT, ETIMEDOUT,
                  end == END_SOURCE ? "MIG_DATA_READ" : "MIG_DATA_WRITE");
    /* POLLHUP/POLLERR: the next read or write says what happened. */
    return true;
  }
}

static bool closed_or(relay_job *j, int end, int err, const char *call) {
  if (err == 0 || err == EPIPE || err == ECONNRESET)
    return fail(j, end, KIND_CLOSED, EIO, "closed");
  return fail(j, end, KIND_SYSCALL, err, call);
}

static bool read_exact(relay_job *j, int fd, void *buf, size_t n, int end) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = recv(fd, (char *)buf + done, n - done, MSG_DONTWAIT);
    if (r > 0) {
      done += (size_t)r;
      continue;
    }
    if (r == 0) return closed_or(j, end, 0, "recv");
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return closed_or(j, end, errno, "recv");
    if (!wait_for(j, fd, POLLIN, end)) return false;
  }
  return true;
}

static bool write_exact(relay_job *j, int fd, const void *buf, size_t n, int end) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = send(fd, (const char *)buf + done, n - done, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r >= 0) {
      done += (size_t)r;
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return closed_or(j, end, errno, "send");
    if (!wait_for(j, fd, POLLOUT, end)) return false;
  }
  return true;
}

/* Moves `n` bytes from the source socket to the destination socket through `pipe`. */
static bool splice_exact(relay_job *j, const int pipe[2], size_t cap, size_t n) {
  size_t left = n;
  while (left > 0) {
    size_t in = 0, want = left < cap ? left : cap;
    while (in < want) {
      ssize_t r = splice(j->src, NULL, pipe[1], NULL, want - in, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (r > 0) {
        in += (size_t)r;
        continue;
      }
      if (r == 0) return closed_or(j, END_SOURCE, 0, "splice");
      if (errno == EINTR) continue;
      if (errno != EAGAIN) return closed_or(j, END_SOURCE, errno, "splice");
      if (!wait_for(j, j->src, POLLIN, END_SOURCE)) return false;
    }
    size_t out = 0;
    while (out < in) {
      ssize_t r = splice(pipe[0], NULL, j->dst, NULL, in - out, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (r > 0) {
        out += (size_t)r;
        continue;
      }
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && errno != EAGAIN) return closed_or(j, END_DESTINATION, errno, "splice");
      if (!wait_for(j, j->dst, POLLOUT, END_DESTINATION)) return false;
    }
    left -= in;
  }
  return true;
}

/* The wire is little-endian whatever the host. */
static void put_u32(uint8_t *at, uint32_t v) {
  at[0] = v & 0xff;
  at[1] = (v >> 8) & 0xff;
  at[2] = (v >> 16) & 0xff;
  at[3] = v >> 24;
}

static uint32_t get_u32(const uint8_t *at) {
  return (uint32_t)at[0] | (uint32_t)at[1] << 8 | (uint32_t)at[2] << 16 | (uint32_t)at[3] << 24;
}

static void put_header(uint8_t *h, uint16_t id, uint16_t command, uint32_t size) {
  memset(h, 0, HEAD);
  h[0] = id & 0xff;
  h[1] = id >> 8;
  h[2] = command & 0xff;
  h[3] = command >> 8;
  put_u32(h + 4, size);
}

/* Reads one reply header from `end` and checks it answers `id` of `command`. */
static bool take_reply(relay_job *j, int fd, int end, uint16_t id, uint16_t command,
                       uint32_t *size) {
  uint8_t h[HEAD];
  j->failed_msg_id = id;
  if (!read_exact(j, fd, h, HEAD, end)) return false;
  uint16_t got_id = (uint16_t)(h[0] | h[1] << 8), got_cmd = (uint16_t)(h[2] | h[3] << 8);
  uint32_t flags, error;
  *size = get_u32(h + 4);
  flags = get_u32(h + 8);
  error = get_u32(h + 12);
  const char *name = command == CMD_READ ? "MIG_DATA_READ" : "MIG_DATA_WRITE";
  char what[160];
  if ((flags & TYPE_MASK) != TYPE_REPLY || got_id != id || got_cmd != command) {
    snprintf(what, sizeof what, "a message (msg %u, command %u, flags 0x%x) where the reply to %s msg %u was due",
             got_id, got_cmd, flags, name, id);
    return fail(j, end, KIND_MALFORMED, EINVAL, what);
  }
  if (flags & FLAG_ERROR) {
    snprintf(what, sizeof what, "%s", name);
    return fail(j, end, KIND_REPLY, error == 0 ? EIO : (int)error, what);
  }
  if (*size < HEAD) {
    snprintf(what, sizeof what, "a %s reply of %u bytes (header 16)", name, *size);
    return fail(j, end, KIND_MALFORMED, EINVAL, what);
  }
  return true;
}

static void relay(relay_job *j) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) {
    fail(j, END_NONE, KIND_SYSCALL, errno, "pipe2");
    return;
  }
  /* A pipe as large as a chunk where the system allows it; smaller works, in more steps. */
  fcntl(p[1], F_SETPIPE_SZ, (int)j->chunk);
  int cap = fcntl(p[1], F_GETPIPE_SZ);
  if (cap <= 0) cap = 65536;
  uint16_t read_id = j->msg_id, write_id = j->msg_id;
  uint16_t reads_due = j->msg_id, writes_due = j->msg_id; /* the oldest outstanding */
  uint32_t reads = 0, writes = 0;
  uint64_t asked = 0;
  bool ended = false;
  for (;;) {
    /* Ask for more while the stream goes on and this call's bytes are not all asked for. */
    while (!ended && reads < j->read_ahead && asked < j->max_bytes) {
      uint8_t req[HEAD + DATA_HEAD];
      put_header(req, read_id, CMD_READ, HEAD + DATA_HEAD);
      j->failed_msg_id = read_id;
      put_u32(req + HEAD, DATA_HEAD); /* argsz */
      put_u32(req + HEAD + 4, j->chunk);
      if (!write_exact(j, j->src, req, sizeof req, END_SOURCE)) goto out;
      read_id++;
      reads++;
      asked += j->chunk;
    }
    if (reads == 0) break;
    uint32_t size;
    if (!take_reply(j, j->src, END_SOURCE, reads_due, CMD_READ, &size)) goto out;
    reads_due++;
    reads--;
    uint8_t dh[DATA_HEAD];
    if (size < HEAD + DATA_HEAD) {
      fail(j, END_SOURCE, KIND_MALFORMED, EINVAL, "a MIG_DATA_READ reply shorter than its argsz and size");
      goto out;
    }
    if (!read_exact(j, j->src, dh, DATA_HEAD, END_SOURCE)) goto out;
    uint32_t n = get_u32(dh + 4);
    if (n > j->chunk || size != HEAD + DATA_HEAD + n) {
      char what[160];
      snprintf(what, sizeof what, "a MIG_DATA_READ reply of %u bytes carrying %u data bytes (%u asked)",
               size, n, j->chunk);
      fail(j, END_SOURCE, KIND_MALFORMED, EINVAL, what);
      goto out;
    }
    if (ended) {
      /* A read asked before the end was seen: past END it returns nothing (STOP_COPY). */
      if (n != 0) {
        fail(j, END_SOURCE, KIND_MALFORMED, EINVAL, "data after the end of the stream");
        goto out;
      }
      continue;
    }
    if (n < j->chunk) ended = true;
    if (n > 0) {
      uint8_t req[HEAD + DATA_HEAD];
      put_header(req, write_id, CMD_WRITE, HEAD + DATA_HEAD + n);
      j->failed_msg_id = write_id;
      put_u32(req + HEAD, DATA_HEAD + n); /* argsz */
      put_u32(req + HEAD + 4, n);
      if (!write_exact(j, j->dst, req, sizeof req, END_DESTINATION)) goto out;
      if (!splice_exact(j, p, (size_t)cap, n)) goto out;
      write_id++;
      writes++;
      j->bytes += n;
    }
    /* Take the destination's replies that are in, and wait for one when too many are due. */
    while (writes > 0) {
      if (writes < j->writes_in_flight) {
        struct pollfd q = {.fd = j->dst, .events = POLLIN};
        if (poll(&q, 1, 0) <= 0) break;
      }
      if (!take_reply(j, j->dst, END_DESTINATION, writes_due, CMD_WRITE, &size)) goto out;
      if (size != HEAD) {
        fail(j, END_DESTINATION, KIND_MALFORMED, EINVAL, "a MIG_DATA_WRITE reply with a payload");
        goto out;
      }
      writes_due++;
      writes--;
    }
  }
  while (writes > 0) {
    uint32_t size;
    if (!take_reply(j, j->dst, END_DESTINATION, writes_due, CMD_WRITE, &size)) goto out;
    if (size != HEAD) {
      fail(j, END_DESTINATION, KIND_MALFORMED, EINVAL, "a MIG_DATA_WRITE reply with a payload");
      goto out;
    }
    writes_due++;
    writes--;
  }
  j->ended = ended;
out:
  j->next_msg_id = read_id > write_id ? read_id : write_id;
  close(p[0]);
  close(p[1]);
}

static void execute(napi_env env, void *data) {
  (void)env;
  relay((relay_job *)data);
}

/* Settles the promise: with the outcome, or rejected with whatever failed building it (never left
 * pending: the caller awaits it). */
static void complete(napi_env env, napi_status status, void *data) {
  relay_job *j = data;
  napi_value result = NULL, what;
  bool built = status == napi_ok && napi_create_object(env, &result) == napi_ok &&
               nv_set(env, result, "bytes", nv_double(env, (double)j->bytes)) &&
               nv_set(env, result, "ended", nv_bool(env, j->ended)) &&
               nv_set(env, result, "nextMsgId", nv_int32(env, j->next_msg_id)) &&
               nv_set(env, result, "end", nv_int32(env, j->end)) &&
               nv_set(env, result, "kind", nv_int32(env, j->kind)) &&
               nv_set(env, result, "errno", nv_int32(env, j->err)) &&
               nv_set(env, result, "failedMsgId", nv_int32(env, j->failed_msg_id)) &&
               napi_create_string_utf8(env, j->what, NAPI_AUTO_LENGTH, &what) == napi_ok &&
               nv_set(env, result, "what", what);
  /* Never left pending: `migrate` awaits it. */
  nv_settle(env, j->deferred, built, result, "migRelay");
  /* The work has run and its promise is settled: a failed delete has no one to go to. */
  (void)napi_delete_async_work(env, j->work);
  free(j);
}

/*
 * migRelay(source, destination, chunk, maxBytes, readAhead, writesInFlight, msgId,
 * sourceTimeoutMs, destinationTimeoutMs): a promise of { bytes, ended, nextMsgId, end, kind,
 * errno, failedMsgId, what } (see the module header; end 0 and kind 0: no failure). Stops once `maxBytes`
 * have been asked for (and relayed) or the stream ended (a read shorter than `chunk`).
 */
static napi_value mig_relay(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 9, argv);
  relay_job *j = calloc(1, sizeof *j);
  if (j == NULL) return nv_throw_errno(env, "calloc", ENOMEM);
  uint32_t msg_id;
  int32_t st, dt;
  if (!nv_arg_fd(env, argv[0], &j->src) || !nv_arg_fd(env, argv[1], &j->dst) ||
      !nv_arg_uint32(env, argv[2], "chunk", &j->chunk) ||
      !nv_arg_u64(env, argv[3], "maxBytes", &j->max_bytes) ||
      !nv_arg_uint32(env, argv[4], "readAhead", &j->read_ahead) ||
      !nv_arg_uint32(env, argv[5], "writesInFlight", &j->writes_in_flight) ||
      !nv_arg_uint32(env, argv[6], "msgId", &msg_id) ||
      !nv_arg_int32(env, argv[7], "sourceTimeoutMs", &st) ||
      !nv_arg_int32(env, argv[8], "destinationTimeoutMs", &dt)) {
    free(j);
    return NULL;
  }
  if (j->chunk == 0 || j->read_ahead == 0 || j->read_ahead > MAX_IN_FLIGHT ||
      j->writes_in_flight == 0 || j->writes_in_flight > MAX_IN_FLIGHT || msg_id > 0xffff) {
    free(j);
    return nv_throw_type(env, "migRelay: chunk, readAhead (1-64), writesInFlight (1-64) or msgId out of range");
  }
  j->msg_id = (uint16_t)msg_id;
  j->src_timeout_ms = st;
  j->dst_timeout_ms = dt;
  napi_value promise = nv_queue_promise_work(env, "vfio-nvlink2:migRelay", execute, complete, j,
                                             &j->deferred, &j->work);
  if (promise == NULL) free(j);
  return promise;
}

napi_status nv_init_relay(napi_env env, napi_value exports) {
  return nv_export(env, exports, "migRelay", mig_relay);
}
