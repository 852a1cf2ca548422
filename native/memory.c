/*
 * Shared memory: memfd_create(2) objects (sparse: ftruncate allocates nothing until a page is
 * touched), MAP_SHARED mmap(2) windows exposed as external ArrayBuffers, hole punching, and the
 * populated ranges of a sparse file through lseek(2) SEEK_DATA/SEEK_HOLE (shmem reports a page
 * as data once it exists in the page cache, i.e. once anyone touched it).
 */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct {
  void *address;
  size_t length;
  bool unmapped;
} nv_mapping;

/*
 * V8 counts every ArrayBuffer's backing store as external memory and collects (mark-compact,
 * "external memory pressure") as that count grows: a 128 GiB aperture mapped as 128 windows of
 * 1 GiB made it collect ~12x as often while allocating nothing. A mapping holds no process memory
 * (its pages belong to the file), so each window's length is taken off the count when the buffer
 * is created and given back when munmap detaches it, which is when V8 takes it off itself. A
 * window left to the garbage collector keeps its offset (its finalizer may not run on the JS
 * thread, where the count may be adjusted); SharedMapping always unmaps.
 */
static napi_status nv_uncount_mapping(napi_env env, size_t length, bool uncount) {
  int64_t ignored;
  return napi_adjust_external_memory(env, uncount ? -(int64_t)length : (int64_t)length, &ignored);
}

/*
 * memfdCreate(name, size): a close-on-exec memfd of `size` bytes, all holes. Made with
 * MFD_ALLOW_SEALING and no seals: the caller adds them (addFileSeals, seals.c), so that the
 * seal calls and constants live in one place (src/native/index.ts memfdCreate).
 */
static napi_value memfd_create_fn(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 2, argv);
  char *name;
  uint64_t size;
  if (!nv_arg_u64(env, argv[1], "size", &size)) return NULL;
  if (size > INT64_MAX) return nv_throw_errno(env, "ftruncate", EFBIG);
  if (!nv_arg_string(env, argv[0], "name", &name)) return NULL;
  int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  free(name);
  if (fd < 0) return nv_throw_errno(env, "memfd_create", errno);
  if (ftruncate(fd, (off_t)size) < 0) {
    int e = errno;
    close(fd);
    return nv_throw_errno(env, "ftruncate", e);
  }
  return nv_new_fd(env, fd);
}

/* ftruncate(fd, size) */
static napi_value ftruncate_fn(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 2, argv);
  int fd;
  uint64_t size;
  if (!nv_arg_fd(env, argv[0], &fd)) return NULL;
  if (!nv_arg_u64(env, argv[1], "size", &size)) return NULL;
  if (size > INT64_MAX) return nv_throw_errno(env, "ftruncate", EFBIG);
  if (ftruncate(fd, (off_t)size) < 0) return nv_throw_errno(env, "ftruncate", errno);
  return nv_undefined(env);
}

/* punchHole(fd, offset, length): frees the pages of a range; it reads back as zeros. */
static napi_value punch_hole(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 3, argv);
  int fd;
  uint64_t offset, length;
  if (!nv_arg_fd(env, argv[0], &fd)) return NULL;
  if (!nv_arg_u64(env, argv[1], "offset", &offset)) return NULL;
  if (!nv_arg_u64(env, argv[2], "length", &length)) return NULL;
  if (offset > INT64_MAX || length > INT64_MAX - offset) return nv_throw_errno(env, "fallocate", EINVAL);
  if (length == 0) return nv_undefined(env);
  if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset, (off_t)length) < 0)
    return nv_throw_errno(env, "fallocate", errno);
  return nv_undefined(env);
}

static void finalize_mapping(napi_env env, void *data, void *hint) {
  (void)env;
  (void)data;
  nv_mapping *m = hint;
  if (!m->unmapped) munmap(m->address, m->length);
  free(m);
}

/* mmap(fd, offset, length, writable): { buffer: ArrayBuffer, address: bigint }, MAP_SHARED.
 * The mapping is released by munmap(buffer) or, failing that, when the buffer is collected. */
static napi_value mmap_fn(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 4, argv);
  int fd;
  uint64_t offset, length;
  bool writable;
  if (!nv_arg_fd(env, argv[0], &fd)) return NULL;
  if (!nv_arg_u64(env, argv[1], "offset", &offset)) return NULL;
  if (!nv_arg_u64(env, argv[2], "length", &length)) return NULL;
  if (!nv_arg_bool(env, argv[3], "writable", &writable)) return NULL;
  long page = sysconf(_SC_PAGESIZE);
  if (length == 0 || length > NV_MAX_WINDOW || offset > INT64_MAX || offset % (uint64_t)page != 0)
    return nv_throw_errno(env, "mmap", EINVAL);
  int prot = PROT_READ | (writable ? PROT_WRITE : 0);
  void *addr = mmap(NULL, (size_t)length, prot, MAP_SHARED, fd, (off_t)offset);
  if (addr == MAP_FAILED) return nv_throw_errno(env, "mmap", errno);
  nv_mapping *m = malloc(sizeof *m);
  if (m == NULL) {
    munmap(addr, (size_t)length);
    return nv_throw_errno(env, "malloc", ENOMEM);
  }
  *m = (nv_mapping){.address = addr, .length = (size_t)length, .unmapped = false};
  napi_value ab;
  napi_status s =
      napi_create_external_arraybuffer(env, addr, (size_t)length, finalize_mapping, m, &ab);
  if (s != napi_ok) {
    munmap(addr, (size_t)length);
    free(m);
    nv_throw_status(env, s, "napi_create_external_arraybuffer");
    return NULL;
  }
  /* From here the buffer owns the mapping: its finalizer unmaps it, whatever fails below. */
  if (!nv_wrap_tagged(env, ab, &NV_TAG_MAPPING, m, NULL)) return NULL;
  NV_CHECK(env, nv_uncount_mapping(env, m->length, true));
  napi_value obj;
  NV_CHECK(env, napi_create_object(env, &obj));
  if (!nv_set(env, obj, "buffer", ab)) return NULL;
  if (!nv_set(env, obj, "address", nv_u64(env, (uint64_t)(uintptr_t)addr))) return NULL;
  return obj;
}

/* munmap(buffer): detaches the ArrayBuffer (later access sees length 0, never a dangling
 * pointer) and unmaps it. Idempotent. */
static napi_value munmap_fn(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 1, argv);
  nv_mapping *m;
  if (!nv_unwrap_tagged(env, argv[0], &NV_TAG_MAPPING, "buffer", "an ArrayBuffer returned by mmap",
                        (void **)&m))
    return NULL;
  if (m->unmapped) return nv_undefined(env);
  NV_CHECK(env, napi_detach_arraybuffer(env, argv[0]));
  m->unmapped = true;
  int unmapped = munmap(m->address, m->length);
  int e = errno;
  NV_CHECK(env, nv_uncount_mapping(env, m->length, false));
  if (unmapped < 0) return nv_throw_errno(env, "munmap", e);
  return nv_undefined(env);
}

/* dataRanges(fd, start, end): [[from, to], ...] (bigints) — the populated parts of [start, end). */
static napi_value data_ranges(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 3, argv);
  int fd;
  uint64_t start, end;
  if (!nv_arg_fd(env, argv[0], &fd)) return NULL;
  if (!nv_arg_u64(env, argv[1], "start", &start)) return NULL;
  if (!nv_arg_u64(env, argv[2], "end", &end)) return NULL;
  if (end > INT64_MAX || start > end) return nv_throw_errno(env, "lseek", EINVAL);
  napi_value arr;
  NV_CHECK(env, napi_create_array(env, &arr));
  uint32_t n = 0;
  off_t pos = (off_t)start;
  while ((uint64_t)pos < end) {
    off_t data = lseek(fd, pos, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break; /* no data at or after pos */
      return nv_throw_errno(env, "lseek", errno);
    }
    if ((uint64_t)data >= end) break;
    off_t hole = lseek(fd, data, SEEK_HOLE);
    if (hole < 0) return nv_throw_errno(env, "lseek", errno);
    uint64_t to = (uint64_t)hole < end ? (uint64_t)hole : end;
    napi_value pair, from_value, to_value;
    NV_CHECK(env, napi_create_array_with_length(env, 2, &pair));
    if ((from_value = nv_u64(env, (uint64_t)data)) == NULL) return NULL;
    if ((to_value = nv_u64(env, to)) == NULL) return NULL;
    NV_CHECK(env, napi_set_element(env, pair, 0, from_value));
    NV_CHECK(env, napi_set_element(env, pair, 1, to_value));
    NV_CHECK(env, napi_set_element(env, arr, n++, pair));
    pos = (off_t)to;
  }
  return arr;
}

/* pageSize(): sysconf(_SC_PAGESIZE). */
static napi_value page_size(napi_env env, napi_callback_info info) {
  (void)info;
  return nv_int32(env, (int32_t)sysconf(_SC_PAGESIZE));
}

napi_status nv_init_memory(napi_env env, napi_value exports) {
  napi_status s;
  if ((s = nv_export(env, exports, "memfdCreate", memfd_create_fn)) != napi_ok) return s;
  if ((s = nv_export(env, exports, "ftruncate", ftruncate_fn)) != napi_ok) return s;
  if ((s = nv_export(env, exports, "punchHole", punch_hole)) != napi_ok) return s;
  if ((s = nv_export(env, exports, "mmap", mmap_fn)) != napi_ok) return s;
  if ((s = nv_export(env, exports, "munmap", munmap_fn)) != napi_ok) return s;
  if ((s = nv_export(env, exports, "dataRanges", data_ranges)) != napi_ok) return s;
  return nv_export(env, exports, "pageSize", page_size);
}
