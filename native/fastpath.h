/*
 * The native fast path of a vfio-user connection (issue 14): REGION_READ and REGION_WRITE of
 * ranges the device model declared plain memory, answered inside the watcher's readiness
 * callback without entering JavaScript. fastpath.c holds the table of plain ranges (a tagged
 * object JS builds per session) and serves one message; watcher.c decides when it may run.
 */
#ifndef VFIO_NVLINK2_NATIVE_FASTPATH_H
#define VFIO_NVLINK2_NATIVE_FASTPATH_H

#include "common.h"

#include <sys/types.h>
#include <sys/uio.h>

/* Slots of the connection's control Int32Array (src/native/fast-path.ts FastSlot). */
enum {
  NV_FAST_GATE = 0,    /* JS: 1 while the connection holds no partial frame and no queued reply */
  NV_FAST_READS = 1,   /* native: REGION_READs served */
  NV_FAST_WRITES = 2,  /* native: REGION_WRITEs served */
  NV_FAST_PENDING = 3, /* native: 1 while a fast reply waits for the socket */
  NV_FAST_RECEIVING = 4, /* native: 1 while a REGION_WRITE's data is received into place */
  NV_FAST_PROGRESS = 5,  /* native: receives that brought data meanwhile (a stall check) */
  NV_FAST_SLOTS = 6,
};

/* One plain range of one region: [start, end) in region offsets (= memfd offsets). */
typedef struct {
  uint32_t region;
  uint64_t start, end;
  bool writable;
  const uint8_t *bytes; /* config space: a JS buffer kept alive by bytes_ref; NULL for a memfd */
  napi_ref bytes_ref;
  int fd;               /* our own duplicate of the memfd; -1 for bytes */
  uint8_t *map;         /* MAP_SHARED of the memfd from map_base (large reads); NULL when unmapped */
  bool map_writable;    /* large writes are received into it */
  uint64_t map_base;
  size_t map_len;
} nv_fast_range;

typedef struct {
  nv_fast_range *ranges;
  size_t count;
  uint32_t max_xfer;       /* max_data_xfer_size: larger accesses are JS's (its EINVAL) */
  const int32_t *tracing;  /* the tracer's subscription count (slot 0); NULL: never */
  napi_ref tracing_ref;
  napi_env env;
} nv_fast_table;

/* A reply the socket did not take whole: the rest, from a 32-byte head and one data part. */
typedef struct {
  uint8_t head[32];
  struct iovec iov[2];
  int count;
} nv_fast_out;

/* Result of serving one message. */
typedef enum {
  NV_FAST_NOT = 0,   /* not a fast message: JS handles it (nothing done) */
  NV_FAST_DONE,      /* served, the reply (if any) sent whole */
  NV_FAST_WAIT,      /* served, the reply's rest in *out (wait for WRITABLE) */
  NV_FAST_SEND_FAIL, /* served, the reply could not be sent: errno in *send_errno */
  NV_FAST_BODY,      /* a large REGION_WRITE begun: the rest of its data goes to *body */
} nv_fast_result;

/* A REGION_WRITE whose data is received straight into the range's mapping. */
typedef struct {
  uint8_t *dst;      /* where the next byte goes */
  size_t left;       /* bytes still to come */
  uint8_t head[32];  /* its reply */
  bool reply;
} nv_fast_body;

/* The per-connection buffer reads are copied into (pread) when not sent from a mapping. */
typedef struct {
  uint8_t *data;
  size_t cap;
  uint8_t *zeros; /* zero bytes, never written: large reads of holes */
  size_t zeros_cap;
} nv_fast_buffer;

/* Whether tracing forbids the fast path now. */
bool nv_fast_tracing(const nv_fast_table *t);

/*
 * Serves the message at p (avail bytes of it received) on socket fd when it is a REGION_READ or
 * REGION_WRITE wholly inside a plain range; *size is its size. Counts into control.
 */
nv_fast_result nv_fast_serve(const nv_fast_table *t, int fd, const uint8_t *p, size_t avail,
                             size_t *size, nv_fast_buffer *buf, nv_fast_out *out, int *send_errno,
                             int32_t *control, nv_fast_body *body);

/* Sends a REGION_WRITE's reply once its data is all in (counted); as nv_fast_serve. */
nv_fast_result nv_fast_body_done(int fd, nv_fast_body *body, nv_fast_out *out, int *send_errno,
                                 int32_t *control);

/* Sends what waits in out; 1 when all went, 0 when the socket is full, -errno on failure. */
int nv_fast_flush(int fd, nv_fast_out *out);

/* The table wrapped in value (type-tagged); throws and returns false otherwise. */
bool nv_fast_unwrap(napi_env env, napi_value value, nv_fast_table **out);

#endif
