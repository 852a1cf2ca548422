/*
 * copy_file_range(2) of one range of a file into the same offsets of another, in the kernel: a
 * renewed memory's populated ranges (src/vfio/shared-memory.ts copyPopulated). On ext4 a GiB goes
 * in ~0.3 s this way against ~4.5 s through pread/pwrite (the file systems that can share
 * extents, XFS and btrfs, share them). The source ending early (a peer cut the file) stops the copy
 * there: the target's range stays a hole, zeros, as a short read is taken elsewhere.
 * copyRange runs on the calling thread; copyRangeLater on libuv's threadpool. writebackLater starts
 * the writeback of a file on the threadpool (sync_file_range SYNC_FILE_RANGE_WRITE): ext4 gives
 * blocks to a file's delayed-allocation data there, instead of in the rename(2) that puts the file
 * over an older one (auto_da_alloc: ~0.3 s per GiB that rename spent on the event loop).
 */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

/* Bytes copied from [offset, offset+length) of `from` to the same offsets of `to`; *err the errno
 * that stopped it (0: all copied, or the source ended). */
static uint64_t copy_range(int from, int to, uint64_t offset, uint64_t length, int *err) {
  loff_t in = (loff_t)offset, out = (loff_t)offset;
  uint64_t done = 0;
  *err = 0;
  while (done < length) {
    uint64_t want = length - done;
    if (want > (UINT64_C(1) << 30)) want = UINT64_C(1) << 30;
    ssize_t n = copy_file_range(from, &in, to, &out, (size_t)want, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      *err = errno;
      break;
    }
    if (n == 0) break; /* the source ends here */
    done += (uint64_t)n;
  }
  return done;
}

static bool read_args(napi_env env, napi_value *argv, int *from, int *to, uint64_t *offset,
                      uint64_t *length) {
  if (!nv_arg_fd(env, argv[0], from) || !nv_arg_fd(env, argv[1], to) ||
      !nv_arg_u64(env, argv[2], "offset", offset) || !nv_arg_u64(env, argv[3], "length", length))
    return false;
  if (*offset > INT64_MAX || *length > INT64_MAX - *offset) {
    nv_throw_type(env, "copyRange: offset + length past 2^63");
    return false;
  }
  return true;
}

/* copyRange(from, to, offset, length): the bytes copied (a number); throws the errno. */
static napi_value copy_range_fn(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 4, argv);
  int from, to, err;
  uint64_t offset, length;
  if (!read_args(env, argv, &from, &to, &offset, &length)) return NULL;
  uint64_t done = copy_range(from, to, offset, length, &err);
  if (err != 0) return nv_throw_errno(env, "copy_file_range", err);
  return nv_double(env, (double)done);
}

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  bool writeback; /* sync_file_range of `from` instead of a copy */
  int from, to, err;
  uint64_t offset, length, done;
} copy_job;

static void execute(napi_env env, void *data) {
  (void)env;
  copy_job *j = data;
  if (!j->writeback) {
    j->done = copy_range(j->from, j->to, j->offset, j->length, &j->err);
    return;
  }
  while (sync_file_range(j->from, 0, 0, SYNC_FILE_RANGE_WRITE) < 0) {
    if (errno == EINTR) continue;
    j->err = errno;
    break;
  }
}

/* Resolves { bytes, errno } (errno 0: no failure); the caller throws. Never left pending. */
static void complete(napi_env env, napi_status status, void *data) {
  copy_job *j = data;
  napi_value result = NULL;
  bool built = status == napi_ok && napi_create_object(env, &result) == napi_ok &&
               nv_set(env, result, "bytes", nv_double(env, (double)j->done)) &&
               nv_set(env, result, "errno", nv_int32(env, j->err));
  nv_settle(env, j->deferred, built, result, j->writeback ? "writebackLater" : "copyRangeLater");
  /* The work has run and its promise is settled: a failed delete has no one to go to. */
  (void)napi_delete_async_work(env, j->work);
  free(j);
}

/* Queues `j` on the threadpool: its promise, or NULL after throwing (j freed). */
static napi_value queue(napi_env env, copy_job *j, const char *name) {
  napi_value promise =
      nv_queue_promise_work(env, name, execute, complete, j, &j->deferred, &j->work);
  if (promise == NULL) free(j);
  return promise;
}

/* copyRangeLater(from, to, offset, length): a promise of { bytes, errno }, copied on the
 * threadpool. Both descriptors must stay open until it settles. */
static napi_value copy_range_later(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 4, argv);
  copy_job *j = calloc(1, sizeof *j);
  if (j == NULL) return nv_throw_errno(env, "calloc", ENOMEM);
  if (!read_args(env, argv, &j->from, &j->to, &j->offset, &j->length)) {
    free(j);
    return NULL;
  }
  return queue(env, j, "vfio-nvlink2:copyRangeLater");
}

/* writebackLater(fd): a promise of { bytes: 0, errno }: the writeback of every dirty page of `fd`
 * started (not waited for) on the threadpool. `fd` must stay open until it settles. */
static napi_value writeback_later(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 1, argv);
  copy_job *j = calloc(1, sizeof *j);
  if (j == NULL) return nv_throw_errno(env, "calloc", ENOMEM);
  if (!nv_arg_fd(env, argv[0], &j->from)) {
    free(j);
    return NULL;
  }
  j->writeback = true;
  return queue(env, j, "vfio-nvlink2:writebackLater");
}

napi_status nv_init_copy(napi_env env, napi_value exports) {
  napi_status s;
  if ((s = nv_export(env, exports, "copyRange", copy_range_fn)) != napi_ok) return s;
  if ((s = nv_export(env, exports, "copyRangeLater", copy_range_later)) != napi_ok) return s;
  return nv_export(env, exports, "writebackLater", writeback_later);
}
