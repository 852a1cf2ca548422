/*
 * SHA-256 and random bytes without node:crypto: requiring node:crypto (webcrypto, x509, keys
 * and a dozen more internal modules) cost a `serve --state-dir` restart ~17 M instructions and
 * 5-12 ms before its first socket listened (issue 8: every socket accepting within 300 ms),
 * where the state directory needs one digest of its tree and of each state file, the launcher
 * one of its code cache, and replaceFile a temporary name. SHA-256 is OpenSSL's, the copy
 * inside the node that loaded us (node exports its OpenSSL for addons, include/node/openssl);
 * random bytes come from getrandom(2), the kernel's CSPRNG that node:crypto's come from too.
 */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <openssl/evp.h>
#include <sys/random.h>

static const char HEX[] = "0123456789abcdef";

static napi_value hex_string(napi_env env, const unsigned char *bytes, size_t n) {
  char text[2 * EVP_MAX_MD_SIZE];
  for (size_t i = 0; i < n; i++) {
    text[2 * i] = HEX[bytes[i] >> 4];
    text[2 * i + 1] = HEX[bytes[i] & 15];
  }
  napi_value out;
  NV_CHECK(env, napi_create_string_latin1(env, text, 2 * n, &out));
  return out;
}

/* sha256Hex(bytes): the SHA-256 of `bytes` as 64 lowercase hex digits (node:crypto
 * createHash('sha256').update(bytes).digest('hex')). */
static napi_value sha256_hex(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 1, argv);
  void *data;
  size_t len;
  if (!nv_arg_bytes(env, argv[0], "bytes", &data, &len)) return NULL;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
    return nv_throw_errno(env, "EVP_Digest sha256", EIO);
  return hex_string(env, md, mdlen);
}

/* randomHex(count): `count` (1..32) random bytes from getrandom(2) as 2*count hex digits. */
static napi_value random_hex(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 1, argv);
  uint32_t count;
  if (!nv_arg_uint32(env, argv[0], "count", &count)) return NULL;
  if (count < 1 || count > 32) return nv_throw_errno(env, "randomHex count", EINVAL);
  unsigned char bytes[32];
  size_t got = 0;
  while (got < count) {
    ssize_t n = getrandom(bytes + got, count - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return nv_throw_errno(env, "getrandom", errno);
    }
    got += (size_t)n;
  }
  return hex_string(env, bytes, count);
}

napi_status nv_init_hash(napi_env env, napi_value exports) {
  napi_status s = nv_export(env, exports, "sha256Hex", sha256_hex);
  if (s != napi_ok) return s;
  return nv_export(env, exports, "randomHex", random_hex);
}
