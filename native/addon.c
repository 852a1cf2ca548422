/*
 * vfio_nvlink2_native: the few system calls Node lacks for a vfio-user server (SCM_RIGHTS
 * send/receive, memfd, mmap, peer credentials, eventfd, an fd-readiness watcher). Every fd it
 * creates is close-on-exec. The typed wrapper is src/native/index.ts. Every N-API status is
 * checked (common.h NV_CHECK) and every wrapped object type-tagged (NV_TAG_*).
 */
#include "common.h"

static napi_value init(napi_env env, napi_value exports) {
  if (nv_init_fds(env, exports) != napi_ok) return NULL;
  if (nv_init_eventfd(env, exports) != napi_ok) return NULL;
  if (nv_init_scm(env, exports) != napi_ok) return NULL;
  if (nv_init_memory(env, exports) != napi_ok) return NULL;
  if (nv_init_digest(env, exports) != napi_ok) return NULL;
  if (nv_init_hash(env, exports) != napi_ok) return NULL;
  if (nv_init_watcher(env, exports) != napi_ok) return NULL;
  if (nv_init_fastpath(env, exports) != napi_ok) return NULL;
  if (nv_init_relay(env, exports) != napi_ok) return NULL;
  if (nv_init_seals(env, exports) != napi_ok) return NULL;
  if (nv_init_copy(env, exports) != napi_ok) return NULL;
  if (nv_init_constants(env, exports) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
