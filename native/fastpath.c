/*
 * The fast path's table of plain ranges and the serving of one message (see fastpath.h).
 *
 * A message is served here only when JS would do exactly the same with it and nothing else:
 * a COMMAND (no flag but NO_REPLY) REGION_READ of exactly 32 bytes, or REGION_WRITE whose count
 * is the data that follows, with 0 < count <= max_data_xfer_size, wholly inside one plain range
 * of its region; a write only where every page it touches is already populated (lseek
 * SEEK_DATA/SEEK_HOLE), so it charges nothing to the memory budget. Anything else is left to
 * JS untouched, which answers it (errors included) as before. Replies are the protocol's:
 * header (msg id and command of the request, flags REPLY, errno 0) + offset, region, count
 * (+ data for a read); none when the request has NO_REPLY (vfio-user.rst "Header").
 *
 *   fastTable(ranges, maxXfer, tracing): a tagged table; ranges are
 *     { region, start: bigint, end: bigint, writable, fd?: number, bytes?: Uint8Array }
 *   (fd is duplicated: the table owns its copy; bytes are kept alive by a reference).
 */
#define _GNU_SOURCE
#include "fastpath.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

/* vfio-user.rst: commands, flags. */
#define CMD_REGION_READ 9u
#define CMD_REGION_WRITE 10u
#define FLAG_REPLY 1u
#define FLAG_NO_REPLY 0x10u
#define HEAD_BYTES 32u
/* Reads from this size on are sent straight from the mapping when its pages are populated. */
#define MAPPED_READ_MIN (64u * 1024u)
/* Writes from this size on whose data has not all arrived are received straight into place. */
#define PLACED_WRITE_MIN (64u * 1024u)

const napi_type_tag NV_TAG_FAST_TABLE = {0x51e0c7a2d94b3f18ULL, 0x0c6db2f98e17a4e3ULL};

static uint32_t get_u32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p) {
  return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static void put_u32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

bool nv_fast_tracing(const nv_fast_table *t) {
  return t->tracing != NULL && __atomic_load_n(&t->tracing[0], __ATOMIC_RELAXED) != 0;
}

static const nv_fast_range *find(const nv_fast_table *t, uint32_t region, uint64_t offset,
                                 uint32_t count, bool write) {
  for (size_t i = 0; i < t->count; i++) {
    const nv_fast_range *r = &t->ranges[i];
    if (r->region != region || offset < r->start || offset >= r->end) continue;
    if ((uint64_t)count > r->end - offset) continue; /* crosses the range's end */
    if (write && !r->writable) continue;
    return r;
  }
  return NULL;
}

typedef enum { HOLE, MIXED, POPULATED } nv_pages;

/* What the pages of [offset, offset + count) of fd hold (lseek SEEK_DATA/SEEK_HOLE): a shmem
 * hole is not read through a mapping, which would allocate it, nor written here, which would
 * charge nothing to the memory budget. */
static nv_pages pages_of(int fd, uint64_t offset, uint64_t count) {
  off_t data = lseek(fd, (off_t)offset, SEEK_DATA);
  if (data < 0) return errno == ENXIO ? HOLE : MIXED; /* ENXIO: no data from offset on */
  if ((uint64_t)data >= offset + count) return HOLE;
  if ((uint64_t)data != offset) return MIXED;
  off_t hole = lseek(fd, (off_t)offset, SEEK_HOLE);
  return hole >= 0 && (uint64_t)hole >= offset + count ? POPULATED : MIXED;
}

static bool grow(nv_fast_buffer *buf, size_t need) {
  if (buf->cap >= need) return true;
  uint8_t *d = realloc(buf->data, need);
  if (d == NULL) return false;
  buf->data = d;
  buf->cap = need;
  return true;
}

static bool pread_all(int fd, uint8_t *into, size_t count, uint64_t offset) {
  size_t done = 0;
  while (done < count) {
    ssize_t n = pread(fd, into + done, count - done, (off_t)(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false; /* a memfd sealed at its size has no short reads inside it */
    done += (size_t)n;
  }
  return true;
}

static bool pwrite_all(int fd, const uint8_t *from, size_t count, uint64_t offset) {
  size_t done = 0;
  while (done < count) {
    ssize_t n = pwrite(fd, from + done, count - done, (off_t)(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += (size_t)n;
  }
  return true;
}

int nv_fast_flush(int fd, nv_fast_out *out) {
  while (out->count > 0) {
    struct msghdr msg = {.msg_iov = out->iov, .msg_iovlen = (size_t)out->count};
    ssize_t n = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      return -errno;
    }
    size_t left = (size_t)n;
    int i = 0;
    while (i < out->count && left >= out->iov[i].iov_len) left -= out->iov[i++].iov_len;
    /* drop the parts that went; advance into the first one that did not go whole */
    memmove(out->iov, out->iov + i, sizeof(struct iovec) * (size_t)(out->count - i));
    out->count -= i;
    if (out->count > 0) {
      out->iov[0].iov_base = (uint8_t *)out->iov[0].iov_base + left;
      out->iov[0].iov_len -= left;
    }
  }
  return 1;
}

/* Sends head (32 bytes) + data; what does not go waits in out (the head copied into it). */
static nv_fast_result send_reply(int fd, const uint8_t *head, const uint8_t *data, size_t count,
                                 nv_fast_out *out, int *send_errno) {
  memcpy(out->head, head, HEAD_BYTES);
  out->iov[0].iov_base = out->head;
  out->iov[0].iov_len = HEAD_BYTES;
  out->count = 1;
  if (count > 0) {
    out->iov[1].iov_base = (void *)data;
    out->iov[1].iov_len = count;
    out->count = 2;
  }
  int r = nv_fast_flush(fd, out);
  if (r == 1) return NV_FAST_DONE;
  if (r == 0) return NV_FAST_WAIT;
  out->count = 0;
  *send_errno = -r;
  return NV_FAST_SEND_FAIL;
}

nv_fast_result nv_fast_serve(const nv_fast_table *t, int fd, const uint8_t *p, size_t avail,
                             size_t *size, nv_fast_buffer *buf, nv_fast_out *out, int *send_errno,
                             int32_t *control, nv_fast_body *body) {
  if (avail < HEAD_BYTES) return NV_FAST_NOT;
  uint32_t command = (uint32_t)p[2] | (uint32_t)p[3] << 8;
  uint32_t msg_size = get_u32(p + 4);
  uint32_t flags = get_u32(p + 8);
  if ((flags & ~FLAG_NO_REPLY) != 0) return NV_FAST_NOT; /* a reply, an error, another type */
  uint64_t offset = get_u64(p + 16);
  uint32_t region = get_u32(p + 24);
  uint32_t count = get_u32(p + 28);
  if (count == 0 || count > t->max_xfer) return NV_FAST_NOT;
  bool write, placed = false;
  if (command == CMD_REGION_READ && msg_size == HEAD_BYTES) write = false;
  else if (command == CMD_REGION_WRITE && msg_size == HEAD_BYTES + (uint64_t)count) {
    write = true;
    if (msg_size > avail) {
      if (count < PLACED_WRITE_MIN) return NV_FAST_NOT;
      placed = true;
    }
  } else return NV_FAST_NOT;
  const nv_fast_range *r = find(t, region, offset, count, write);
  if (r == NULL) return NV_FAST_NOT;

  bool reply = (flags & FLAG_NO_REPLY) == 0;
  uint8_t head[HEAD_BYTES];
  memcpy(head, p, 4); /* msg id, command */
  put_u32(head + 4, HEAD_BYTES + (write ? 0 : count));
  put_u32(head + 8, FLAG_REPLY);
  put_u32(head + 12, 0);
  memcpy(head + 16, p + 16, 16); /* offset, region, count: all of it is done */

  if (placed) {
    /* the data that came with the head now, the rest as it arrives: straight into place */
    if (r->map == NULL || !r->map_writable || pages_of(r->fd, offset, count) != POPULATED)
      return NV_FAST_NOT;
    size_t got = avail - HEAD_BYTES;
    uint8_t *dst = r->map + (offset - r->map_base);
    memcpy(dst, p + HEAD_BYTES, got);
    body->dst = dst + got;
    body->left = count - got;
    memcpy(body->head, head, HEAD_BYTES);
    body->reply = reply;
    *size = avail;
    return NV_FAST_BODY;
  }
  if (write) {
    if (pages_of(r->fd, offset, count) != POPULATED) return NV_FAST_NOT; /* JS charges it */
    if (!pwrite_all(r->fd, p + HEAD_BYTES, count, offset)) return NV_FAST_NOT;
    *size = msg_size;
    __atomic_add_fetch(&control[NV_FAST_WRITES], 1, __ATOMIC_RELAXED);
    return reply ? send_reply(fd, head, NULL, 0, out, send_errno) : NV_FAST_DONE;
  }
  const uint8_t *data;
  nv_pages pages = MIXED;
  if (r->bytes != NULL) {
    data = r->bytes + (offset - r->start);
  } else if (count >= MAPPED_READ_MIN && (pages = pages_of(r->fd, offset, count)) != MIXED &&
             (pages == HOLE || r->map != NULL)) {
    /* never written: zeros, from memory nobody writes (calloc: the zero page, no RSS) */
    if (pages == HOLE && buf->zeros_cap < count) {
      free(buf->zeros);
      buf->zeros_cap = 0;
      if ((buf->zeros = calloc(1, t->max_xfer)) == NULL) return NV_FAST_NOT;
      buf->zeros_cap = t->max_xfer;
    }
    data = pages == HOLE ? buf->zeros : r->map + (offset - r->map_base);
  } else {
    if (!grow(buf, count) || !pread_all(r->fd, buf->data, count, offset)) return NV_FAST_NOT;
    data = buf->data;
  }
  *size = msg_size;
  __atomic_add_fetch(&control[NV_FAST_READS], 1, __ATOMIC_RELAXED);
  return reply ? send_reply(fd, head, data, count, out, send_errno) : NV_FAST_DONE;
}

nv_fast_result nv_fast_body_done(int fd, nv_fast_body *body, nv_fast_out *out, int *send_errno,
                                 int32_t *control) {
  __atomic_add_fetch(&control[NV_FAST_WRITES], 1, __ATOMIC_RELAXED);
  return body->reply ? send_reply(fd, body->head, NULL, 0, out, send_errno) : NV_FAST_DONE;
}

/* Gives back every range's fd, mapping and buffer; the table serves nothing after. Every range
 * is released whatever fails: the first failed napi_delete_reference is returned, for a caller
 * that can still report it. */
static napi_status close_ranges(napi_env env, nv_fast_table *t) {
  napi_status first = napi_ok;
  for (size_t i = 0; i < t->count; i++) {
    nv_fast_range *r = &t->ranges[i];
    if (r->map != NULL) munmap(r->map, r->map_len);
    if (r->fd >= 0) close(r->fd);
    if (r->bytes_ref != NULL) {
      napi_status s = napi_delete_reference(env, r->bytes_ref);
      if (first == napi_ok) first = s;
      r->bytes_ref = NULL;
    }
  }
  t->count = 0;
  return first;
}

/* Frees the table. Its callers are the finalizer and paths that throw already: neither has
 * anyone to report a failed napi_delete_reference to (a leaked reference at worst). */
static void release_table(napi_env env, nv_fast_table *t) {
  (void)close_ranges(env, t);
  if (t->tracing_ref != NULL) (void)napi_delete_reference(env, t->tracing_ref);
  free(t->ranges);
  free(t);
}

/* fastTableClose(table): gives back its fds and mappings now, not when it is collected (a
 * client's leaving must not leave fds open until a GC); it serves nothing after. Idempotent. */
static napi_value fast_table_close(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 1, argv);
  nv_fast_table *t;
  if (!nv_fast_unwrap(env, argv[0], &t)) return NULL;
  napi_status s = close_ranges(env, t); /* the fds and mappings are gone either way */
  if (s != napi_ok) {
    nv_throw_status(env, s, "napi_delete_reference");
    return NULL;
  }
  return nv_undefined(env);
}

static void on_table_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  release_table(env, data);
}

bool nv_fast_unwrap(napi_env env, napi_value value, nv_fast_table **out) {
  return nv_unwrap_tagged(env, value, &NV_TAG_FAST_TABLE, "table",
                          "a value returned by fastTable", (void **)out);
}

static bool get(napi_env env, napi_value obj, const char *name, napi_value *out) {
  NV_CHECK_BOOL(env, napi_get_named_property(env, obj, name, out));
  return true;
}

static bool is_undefined(napi_env env, napi_value v, bool *out) {
  napi_valuetype type;
  NV_CHECK_BOOL(env, napi_typeof(env, v, &type));
  *out = type == napi_undefined;
  return true;
}

/* Reads ranges[i] into r (fd duplicated, mapping made, bytes referenced). */
static bool read_range(napi_env env, napi_value item, nv_fast_range *r) {
  napi_value v;
  uint64_t region;
  if (!get(env, item, "region", &v) || !nv_arg_u64(env, v, "range.region", &region)) return false;
  if (region > UINT32_MAX) return nv_throw_type(env, "range.region must be a u32"), false;
  r->region = (uint32_t)region;
  if (!get(env, item, "start", &v) || !nv_arg_u64(env, v, "range.start", &r->start)) return false;
  if (!get(env, item, "end", &v) || !nv_arg_u64(env, v, "range.end", &r->end)) return false;
  if (r->end <= r->start) return nv_throw_type(env, "range.end must be above range.start"), false;
  if (!get(env, item, "writable", &v) || !nv_arg_bool(env, v, "range.writable", &r->writable))
    return false;
  napi_value bytes, fd_value;
  bool no_bytes, no_fd;
  if (!get(env, item, "bytes", &bytes) || !is_undefined(env, bytes, &no_bytes)) return false;
  if (!get(env, item, "fd", &fd_value) || !is_undefined(env, fd_value, &no_fd)) return false;
  if (no_bytes == no_fd) return nv_throw_type(env, "a range needs exactly one of fd and bytes"), false;
  if (!no_bytes) {
    void *data;
    size_t len;
    if (!nv_arg_bytes(env, bytes, "range.bytes", &data, &len)) return false;
    if (r->writable) return nv_throw_type(env, "a bytes range must not be writable"), false;
    if (r->end > len) return nv_throw_type(env, "range.end is past range.bytes"), false;
    NV_CHECK_BOOL(env, napi_create_reference(env, bytes, 1, &r->bytes_ref));
    r->bytes = data;
    return true;
  }
  int fd;
  if (!nv_arg_fd(env, fd_value, &fd)) return false;
  r->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (r->fd < 0) return nv_throw_errno(env, "fcntl(F_DUPFD_CLOEXEC)", errno), false;
  uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
  r->map_base = r->start - r->start % page;
  r->map_len = (size_t)(r->end - r->map_base);
  int prot = PROT_READ | (r->writable ? PROT_WRITE : 0);
  void *m = mmap(NULL, r->map_len, prot, MAP_SHARED, r->fd, (off_t)r->map_base);
  r->map = m == MAP_FAILED ? NULL : m; /* without it, large reads are pread, writes JS's */
  r->map_writable = r->map != NULL && r->writable;
  return true;
}

/* fastTable(ranges, maxXfer, tracing: Int32Array | null): the table, tagged. */
static napi_value fast_table(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 3, argv);
  bool is_array;
  NV_CHECK(env, napi_is_array(env, argv[0], &is_array));
  if (!is_array) return nv_throw_type(env, "ranges must be an array");
  uint32_t n, max_xfer;
  NV_CHECK(env, napi_get_array_length(env, argv[0], &n));
  if (!nv_arg_uint32(env, argv[1], "maxXfer", &max_xfer)) return NULL;
  napi_valuetype tracing_type;
  NV_CHECK(env, napi_typeof(env, argv[2], &tracing_type));
  int32_t *tracing = NULL;
  if (tracing_type != napi_null) {
    bool typed;
    NV_CHECK(env, napi_is_typedarray(env, argv[2], &typed));
    napi_typedarray_type type = napi_uint8_array;
    size_t length = 0;
    void *data = NULL;
    if (typed) NV_CHECK(env, napi_get_typedarray_info(env, argv[2], &type, &length, &data, NULL, NULL));
    if (!typed || type != napi_int32_array || length < 1)
      return nv_throw_type(env, "tracing must be an Int32Array or null");
    tracing = data;
  }
  napi_value obj;
  NV_CHECK(env, napi_create_object(env, &obj));
  nv_fast_table *t = calloc(1, sizeof *t);
  if (t == NULL) return nv_throw_errno(env, "calloc", ENOMEM);
  t->env = env;
  t->max_xfer = max_xfer;
  t->ranges = calloc(n > 0 ? n : 1, sizeof *t->ranges);
  if (t->ranges == NULL) {
    free(t);
    return nv_throw_errno(env, "calloc", ENOMEM);
  }
  for (uint32_t i = 0; i < n; i++) t->ranges[i].fd = -1;
  napi_status s = napi_ok;
  if (tracing != NULL && (s = napi_create_reference(env, argv[2], 1, &t->tracing_ref)) != napi_ok) {
    release_table(env, t);
    nv_throw_status(env, s, "napi_create_reference");
    return NULL;
  }
  t->tracing = tracing;
  for (uint32_t i = 0; i < n; i++) {
    napi_value item;
    s = napi_get_element(env, argv[0], i, &item);
    if (s != napi_ok) {
      t->count = i + 1;
      release_table(env, t);
      nv_throw_status(env, s, "napi_get_element");
      return NULL;
    }
    bool ok = read_range(env, item, &t->ranges[i]);
    t->count = i + 1; /* what read_range made so far is released with the table */
    if (!ok) {
      release_table(env, t);
      return NULL;
    }
  }
  /* Tagged before it is wrapped: once wrapped, only the finalizer may release it. */
  const char *call = "napi_type_tag_object";
  s = napi_type_tag_object(env, obj, &NV_TAG_FAST_TABLE);
  if (s == napi_ok) {
    call = "napi_wrap";
    s = napi_wrap(env, obj, t, on_table_finalize, NULL, NULL);
  }
  if (s != napi_ok) {
    release_table(env, t);
    nv_throw_status(env, s, call);
    return NULL;
  }
  return obj;
}

napi_status nv_init_fastpath(napi_env env, napi_value exports) {
  napi_status s = nv_export(env, exports, "fastTable", fast_table);
  if (s != napi_ok) return s;
  return nv_export(env, exports, "fastTableClose", fast_table_close);
}
