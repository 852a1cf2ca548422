/*
 * Page digests for migration's dirty tracking (src/migration/page-digest.ts): XXH64 (Yann
 * Collet's xxHash, 64-bit variant, seed 0) of each `pageSize` piece of a buffer, written as
 * little-endian u64s into an output buffer. Native because it is the measured hot path of
 * stop-copy: every page sent in pre-copy is digested again once the device stops, and
 * node:crypto's SHA-256 managed ~0.5-1 GB/s here against this loop's several GB/s.
 *
 * And the migration stream's record CRC-32 (zlib's, IEEE 802.3, reflected 0xEDB88320): every
 * stream byte is checksummed by the source and again by the destination, and node:zlib's
 * crc32 (a table loop, ~4 GB/s here) was a fifth of each server's CPU in stop-copy. x86-64
 * with PCLMULQDQ folds 64 bytes per step with carry-less multiplies (Intel's "Fast CRC
 * Computation for Generic Polynomials Using PCLMULQDQ", the constants of Chromium's zlib
 * crc32_simd.c crc32_sse42_simd_; ~6 GB/s here), with AVX-512 VPCLMULQDQ 256 bytes per step
 * (~30 GB/s); elsewhere, and for the bytes around, slicing by 8.
 */
#include "common.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

#define P1 0x9E3779B185EBCA87ULL
#define P2 0xC2B2AE3D27D4EB4FULL
#define P3 0x165667B19E3779F9ULL
#define P4 0x85EBCA77C2B2AE63ULL
#define P5 0x27D4EB2F165667C5ULL

static inline uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static inline uint64_t read64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8); /* the hosts we run on are little-endian, as xxHash reads */
  return v;
}

static inline uint32_t read32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

static inline uint64_t round64(uint64_t acc, uint64_t input) {
  acc += input * P2;
  acc = rotl64(acc, 31);
  return acc * P1;
}

static inline uint64_t merge64(uint64_t acc, uint64_t val) {
  acc ^= round64(0, val);
  return acc * P1 + P4;
}

static uint64_t xxh64(const uint8_t *p, size_t len) {
  const uint8_t *end = p + len;
  uint64_t h;
  if (len >= 32) {
    uint64_t v1 = P1 + P2, v2 = P2, v3 = 0, v4 = -P1;
    const uint8_t *limit = end - 32;
    do {
      v1 = round64(v1, read64(p));
      v2 = round64(v2, read64(p + 8));
      v3 = round64(v3, read64(p + 16));
      v4 = round64(v4, read64(p + 24));
      p += 32;
    } while (p <= limit);
    h = rotl64(v1, 1) + rotl64(v2, 7) + rotl64(v3, 12) + rotl64(v4, 18);
    h = merge64(h, v1);
    h = merge64(h, v2);
    h = merge64(h, v3);
    h = merge64(h, v4);
  } else {
    h = P5;
  }
  h += (uint64_t)len;
  for (; p + 8 <= end; p += 8) h = rotl64(h ^ round64(0, read64(p)), 27) * P1 + P4;
  if (p + 4 <= end) {
    h = rotl64(h ^ ((uint64_t)read32(p) * P1), 23) * P2 + P3;
    p += 4;
  }
  for (; p < end; p++) h = rotl64(h ^ ((uint64_t)*p * P5), 11) * P1;
  h ^= h >> 33;
  h *= P2;
  h ^= h >> 29;
  h *= P3;
  h ^= h >> 32;
  return h;
}

/*
 * pageDigests(bytes, pageSize, out): out[8i..8i+8) = XXH64 of bytes[i*pageSize, (i+1)*pageSize)
 * (the last piece may be shorter). `out` must hold 8 bytes per piece.
 */
static napi_value page_digests(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 3, argv);
  void *data, *out;
  size_t len, out_len;
  uint32_t page;
  if (!nv_arg_bytes(env, argv[0], "bytes", &data, &len)) return NULL;
  if (!nv_arg_uint32(env, argv[1], "pageSize", &page)) return NULL;
  if (!nv_arg_bytes(env, argv[2], "out", &out, &out_len)) return NULL;
  if (page == 0) return nv_throw_type(env, "pageSize must be > 0");
  size_t pieces = (len + page - 1) / page;
  if (out_len < pieces * 8) return nv_throw_type(env, "out holds fewer than 8 bytes per page");
  const uint8_t *in = data;
  uint8_t *o = out;
  for (size_t i = 0; i < pieces; i++) {
    size_t at = i * page;
    uint64_t h = xxh64(in + at, len - at < page ? len - at : page);
    memcpy(o + 8 * i, &h, 8);
  }
  return nv_undefined(env);
}

/* Slicing-by-8 tables of the reflected polynomial, built once. */
static uint32_t crc_table[8][256];
static pthread_once_t crc_table_once = PTHREAD_ONCE_INIT;
static bool crc_clmul;
static bool crc_vpclmul_ok;

static void crc_init(void) {
  for (uint32_t n = 0; n < 256; n++) {
    uint32_t c = n;
    for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    crc_table[0][n] = c;
  }
  for (uint32_t n = 0; n < 256; n++)
    for (int t = 1; t < 8; t++)
      crc_table[t][n] = (crc_table[t - 1][n] >> 8) ^ crc_table[0][crc_table[t - 1][n] & 0xff];
#if defined(__x86_64__)
  unsigned a, b, c, d;
  /* CPUID 1: ECX bit 1 PCLMULQDQ, bit 19 SSE4.1 (_mm_extract_epi32). */
  crc_clmul = __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 1)) && (c & (1u << 19));
  /* GCC's check includes the OS saving the zmm state (XGETBV). */
  crc_vpclmul_ok = crc_clmul && __builtin_cpu_supports("avx512f") &&
                   __builtin_cpu_supports("vpclmulqdq");
#endif
}

/* The running (inverted) CRC `c` over `len` bytes at `p`, 8 at a time. */
static uint32_t crc_slice8(uint32_t c, const uint8_t *p, size_t len) {
  for (; len >= 8; p += 8, len -= 8) {
    uint32_t lo = read32(p) ^ c, hi = read32(p + 4);
    c = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
        crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^ crc_table[3][hi & 0xff] ^
        crc_table[2][(hi >> 8) & 0xff] ^ crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
  }
  for (; len > 0; p++, len--) c = crc_table[0][(c ^ *p) & 0xff] ^ (c >> 8);
  return c;
}

#if defined(__x86_64__)
__attribute__((target("pclmul,sse4.1"))) static uint32_t crc_clmul_tail(__m128i x1,
                                                                        const uint8_t *p,
                                                                        size_t len);

/*
 * The running (inverted) CRC `c` over `len` bytes at `p`: len >= 64 and a multiple of 16.
 * Four 128-bit lanes fold 64 bytes a step, then fold into one lane, then 16 bytes a step,
 * then 128 → 64 bits and a Barrett reduction to 32 (crc32_sse42_simd_'s steps).
 */
__attribute__((target("pclmul,sse4.1"))) static uint32_t crc_clmul64(uint32_t c,
                                                                      const uint8_t *p,
                                                                      size_t len) {
  const __m128i k1k2 = _mm_set_epi64x(0x01c6e41596, 0x0154442bd4);
  const __m128i k3k4 = _mm_set_epi64x(0x00ccaa009e, 0x01751997d0);
  __m128i x0, x1, x2, x3, x4, x5, x6, x7, x8, y5, y6, y7, y8;
  x1 = _mm_loadu_si128((const __m128i *)(p + 0x00));
  x2 = _mm_loadu_si128((const __m128i *)(p + 0x10));
  x3 = _mm_loadu_si128((const __m128i *)(p + 0x20));
  x4 = _mm_loadu_si128((const __m128i *)(p + 0x30));
  x1 = _mm_xor_si128(x1, _mm_cvtsi32_si128((int)c));
  x0 = k1k2;
  p += 64;
  len -= 64;
  while (len >= 64) {
    x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
    x6 = _mm_clmulepi64_si128(x2, x0, 0x00);
    x7 = _mm_clmulepi64_si128(x3, x0, 0x00);
    x8 = _mm_clmulepi64_si128(x4, x0, 0x00);
    x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
    x2 = _mm_clmulepi64_si128(x2, x0, 0x11);
    x3 = _mm_clmulepi64_si128(x3, x0, 0x11);
    x4 = _mm_clmulepi64_si128(x4, x0, 0x11);
    y5 = _mm_loadu_si128((const __m128i *)(p + 0x00));
    y6 = _mm_loadu_si128((const __m128i *)(p + 0x10));
    y7 = _mm_loadu_si128((const __m128i *)(p + 0x20));
    y8 = _mm_loadu_si128((const __m128i *)(p + 0x30));
    x1 = _mm_xor_si128(_mm_xor_si128(x1, x5), y5);
    x2 = _mm_xor_si128(_mm_xor_si128(x2, x6), y6);
    x3 = _mm_xor_si128(_mm_xor_si128(x3, x7), y7);
    x4 = _mm_xor_si128(_mm_xor_si128(x4, x8), y8);
    p += 64;
    len -= 64;
  }
  x0 = k3k4;
  x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
  x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
  x1 = _mm_xor_si128(_mm_xor_si128(x1, x2), x5);
  x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
  x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
  x1 = _mm_xor_si128(_mm_xor_si128(x1, x3), x5);
  x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
  x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
  x1 = _mm_xor_si128(_mm_xor_si128(x1, x4), x5);
  return crc_clmul_tail(x1, p, len);
}

/*
 * The rest after the folding: `x1` the 128 bits folded so far, `len` (a multiple of 16) bytes
 * at `p` folded 16 at a time, then 128 → 64 bits and a Barrett reduction to 32.
 */
__attribute__((target("pclmul,sse4.1"))) static uint32_t crc_clmul_tail(__m128i x1,
                                                                        const uint8_t *p,
                                                                        size_t len) {
  const __m128i k3k4 = _mm_set_epi64x(0x00ccaa009e, 0x01751997d0);
  const __m128i k5k0 = _mm_set_epi64x(0, 0x0163cd6124);
  const __m128i poly = _mm_set_epi64x(0x01f7011641, 0x01db710641);
  __m128i x0 = k3k4, x2, x3, x5;
  while (len >= 16) {
    x2 = _mm_loadu_si128((const __m128i *)p);
    x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
    x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
    x1 = _mm_xor_si128(_mm_xor_si128(x1, x2), x5);
    p += 16;
    len -= 16;
  }
  x2 = _mm_clmulepi64_si128(x1, x0, 0x10);
  x3 = _mm_setr_epi32(~0, 0, ~0, 0);
  x1 = _mm_srli_si128(x1, 8);
  x1 = _mm_xor_si128(x1, x2);
  x0 = k5k0;
  x2 = _mm_srli_si128(x1, 4);
  x1 = _mm_and_si128(x1, x3);
  x1 = _mm_clmulepi64_si128(x1, x0, 0x00);
  x1 = _mm_xor_si128(x1, x2);
  x0 = poly;
  x2 = _mm_and_si128(x1, x3);
  x2 = _mm_clmulepi64_si128(x2, x0, 0x10);
  x2 = _mm_and_si128(x2, x3);
  x2 = _mm_clmulepi64_si128(x2, x0, 0x00);
  x1 = _mm_xor_si128(x1, x2);
  return (uint32_t)_mm_extract_epi32(x1, 1);
}

/*
 * As crc_clmul64 with VPCLMULQDQ on 512-bit registers: len >= 256 and a multiple of 16. Four
 * zmm lanes fold 256 bytes a step (constants x^(2048±32) mod P, bit-reflected, as the 128-bit
 * ones are x^(512±32)), fold into one, 64 bytes a step, then its four 128-bit parts into one.
 */
__attribute__((target("avx512f,vpclmulqdq,pclmul,sse4.1"))) static uint32_t crc_vpclmul(
    uint32_t c, const uint8_t *p, size_t len) {
  const __m512i k256 = _mm512_broadcast_i32x4(_mm_set_epi64x(0x01322d1430, 0x011542778a));
  const __m512i k64 = _mm512_broadcast_i32x4(_mm_set_epi64x(0x01c6e41596, 0x0154442bd4));
  const __m128i k16 = _mm_set_epi64x(0x00ccaa009e, 0x01751997d0);
  __m512i x0, x1, x2, x3, x4, x5, x6, x7, x8;
  x1 = _mm512_loadu_si512((const void *)(p + 0x00));
  x2 = _mm512_loadu_si512((const void *)(p + 0x40));
  x3 = _mm512_loadu_si512((const void *)(p + 0x80));
  x4 = _mm512_loadu_si512((const void *)(p + 0xc0));
  x0 = _mm512_inserti32x4(_mm512_setzero_si512(), _mm_cvtsi32_si128((int)c), 0);
  x1 = _mm512_xor_si512(x1, x0);
  x0 = k256;
  p += 256;
  len -= 256;
  while (len >= 256) {
    x5 = _mm512_clmulepi64_epi128(x1, x0, 0x00);
    x6 = _mm512_clmulepi64_epi128(x2, x0, 0x00);
    x7 = _mm512_clmulepi64_epi128(x3, x0, 0x00);
    x8 = _mm512_clmulepi64_epi128(x4, x0, 0x00);
    x1 = _mm512_clmulepi64_epi128(x1, x0, 0x11);
    x2 = _mm512_clmulepi64_epi128(x2, x0, 0x11);
    x3 = _mm512_clmulepi64_epi128(x3, x0, 0x11);
    x4 = _mm512_clmulepi64_epi128(x4, x0, 0x11);
    x1 = _mm512_xor_si512(_mm512_xor_si512(x1, x5), _mm512_loadu_si512(p + 0x00));
    x2 = _mm512_xor_si512(_mm512_xor_si512(x2, x6), _mm512_loadu_si512(p + 0x40));
    x3 = _mm512_xor_si512(_mm512_xor_si512(x3, x7), _mm512_loadu_si512(p + 0x80));
    x4 = _mm512_xor_si512(_mm512_xor_si512(x4, x8), _mm512_loadu_si512(p + 0xc0));
    p += 256;
    len -= 256;
  }
  x0 = k64;
  x5 = _mm512_clmulepi64_epi128(x1, x0, 0x00);
  x1 = _mm512_clmulepi64_epi128(x1, x0, 0x11);
  x1 = _mm512_xor_si512(_mm512_xor_si512(x1, x2), x5);
  x5 = _mm512_clmulepi64_epi128(x1, x0, 0x00);
  x1 = _mm512_clmulepi64_epi128(x1, x0, 0x11);
  x1 = _mm512_xor_si512(_mm512_xor_si512(x1, x3), x5);
  x5 = _mm512_clmulepi64_epi128(x1, x0, 0x00);
  x1 = _mm512_clmulepi64_epi128(x1, x0, 0x11);
  x1 = _mm512_xor_si512(_mm512_xor_si512(x1, x4), x5);
  while (len >= 64) {
    x5 = _mm512_clmulepi64_epi128(x1, x0, 0x00);
    x1 = _mm512_clmulepi64_epi128(x1, x0, 0x11);
    x1 = _mm512_xor_si512(_mm512_xor_si512(x1, _mm512_loadu_si512(p)), x5);
    p += 64;
    len -= 64;
  }
  /* The four 128-bit parts, lowest address first, folded 16 bytes at a time. */
  __m128i a = _mm512_extracti32x4_epi32(x1, 0), b, t;
  b = _mm512_extracti32x4_epi32(x1, 1);
  t = _mm_clmulepi64_si128(a, k16, 0x00);
  a = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(a, k16, 0x11), t), b);
  b = _mm512_extracti32x4_epi32(x1, 2);
  t = _mm_clmulepi64_si128(a, k16, 0x00);
  a = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(a, k16, 0x11), t), b);
  b = _mm512_extracti32x4_epi32(x1, 3);
  t = _mm_clmulepi64_si128(a, k16, 0x00);
  a = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(a, k16, 0x11), t), b);
  return crc_clmul_tail(a, p, len);
}
#endif

/* The ways crc32_bytes can take; CRC_AUTO is the fastest the CPU has. */
enum crc_path { CRC_AUTO = 0, CRC_SLICE8 = 1, CRC_CLMUL = 2, CRC_VPCLMUL = 3 };

/* Whether this CPU (and OS) can take `path`. */
static bool crc_path_ok(uint32_t path) {
  switch (path) {
  case CRC_AUTO:
  case CRC_SLICE8:
    return true;
  case CRC_CLMUL:
    return crc_clmul;
  case CRC_VPCLMUL:
    return crc_vpclmul_ok;
  default:
    return false;
  }
}

/*
 * zlib's crc32(crc, p, len): the CRC-32 of the bytes after those `crc` was the CRC of, by
 * `path` (one crc_path_ok allows; the tests take each in turn, the stream CRC_AUTO).
 */
static uint32_t crc32_bytes(uint32_t crc, const uint8_t *p, size_t len, uint32_t path) {
  uint32_t c = ~crc;
#if defined(__x86_64__)
  bool clmul = path == CRC_AUTO ? crc_clmul : path >= CRC_CLMUL;
  bool wide = path == CRC_AUTO ? crc_vpclmul_ok : path == CRC_VPCLMUL;
  if (clmul && len >= 64) {
    size_t bulk = len & ~(size_t)15;
    c = wide && bulk >= 256 ? crc_vpclmul(c, p, bulk) : crc_clmul64(c, p, bulk);
    p += bulk;
    len -= bulk;
  }
#else
  (void)path;
#endif
  return ~crc_slice8(c, p, len);
}

/*
 * crc32(bytes, crc, path): zlib's crc32(crc, bytes, length) (node:zlib crc32(bytes, crc)): the
 * CRC-32 of `bytes` continuing one of earlier bytes (`crc`, 0 to start), as a uint32, by
 * `path` (enum crc_path); ENOTSUP when this CPU cannot take it.
 */
static napi_value crc32_fn(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 3, argv);
  void *data;
  size_t len;
  uint32_t crc, path;
  if (!nv_arg_bytes(env, argv[0], "bytes", &data, &len)) return NULL;
  if (!nv_arg_uint32(env, argv[1], "crc", &crc)) return NULL;
  if (!nv_arg_uint32(env, argv[2], "path", &path)) return NULL;
  int err = pthread_once(&crc_table_once, crc_init);
  if (err != 0) return nv_throw_errno(env, "pthread_once", err);
  if (!crc_path_ok(path)) return nv_throw_errno(env, "crc32 path", ENOTSUP);
  napi_value out;
  NV_CHECK(env, napi_create_uint32(env, crc32_bytes(crc, data, len, path), &out));
  return out;
}

/* crc32Paths(): the crc_path numbers this CPU can take, CRC_AUTO first. */
static napi_value crc32_paths_fn(napi_env env, napi_callback_info info) {
  (void)info;
  int err = pthread_once(&crc_table_once, crc_init);
  if (err != 0) return nv_throw_errno(env, "pthread_once", err);
  napi_value out, v;
  NV_CHECK(env, napi_create_array(env, &out));
  uint32_t n = 0;
  for (uint32_t path = CRC_AUTO; path <= CRC_VPCLMUL; path++) {
    if (!crc_path_ok(path)) continue;
    NV_CHECK(env, napi_create_uint32(env, path, &v));
    NV_CHECK(env, napi_set_element(env, out, n++, v));
  }
  return out;
}

napi_status nv_init_digest(napi_env env, napi_value exports) {
  napi_status s = nv_export(env, exports, "pageDigests", page_digests);
  if (s != napi_ok) return s;
  s = nv_export(env, exports, "crc32Paths", crc32_paths_fn);
  if (s != napi_ok) return s;
  return nv_export(env, exports, "crc32", crc32_fn);
}
