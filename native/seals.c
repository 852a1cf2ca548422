/*
 * File seals (memfd_create(2), fcntl(2) F_GET_SEALS / F_ADD_SEALS): whether a file a client
 * shared can still shrink under a mapping of it (a shrunk file raises SIGBUS on access), and
 * sealing one; and whether anyone else holds a file open for writing (a write lease). Kept apart
 * from memory.c: only these fcntl calls.
 */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>

/* fileSeals(fd): the F_SEAL_* bits of `fd`; 0 for a file that cannot be sealed (EINVAL: a file
 * of a filesystem without seals). A memfd made without MFD_ALLOW_SEALING reports F_SEAL_SEAL. */
static napi_value file_seals(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 1, argv);
  int fd;
  if (!nv_arg_fd(env, argv[0], &fd)) return NULL;
  int seals = fcntl(fd, F_GET_SEALS);
  if (seals < 0) {
    if (errno == EINVAL) return nv_int32(env, 0);
    return nv_throw_errno(env, "fcntl", errno);
  }
  return nv_int32(env, seals);
}

/* isMemoryFile(fd): whether `fd` is a file of memory (shmem: memfd, tmpfs; hugetlbfs), the only
 * files F_GET_SEALS answers for (mm/memfd.c memfd_fcntl / memfd_file_seals_ptr). Asks nothing
 * of the file's file system, so it cannot wait on one (FUSE, NFS). */
static napi_value is_memory_file(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 1, argv);
  int fd;
  if (!nv_arg_fd(env, argv[0], &fd)) return NULL;
  if (fcntl(fd, F_GET_SEALS) >= 0) return nv_bool(env, true);
  if (errno == EINVAL) return nv_bool(env, false);
  return nv_throw_errno(env, "fcntl", errno);
}

/* heldElsewhere(fd): whether an open file description of fd's file exists besides fd's own,
 * anyone's, for writing or reading, held by a descriptor or only by a mapping (fs/locks.c
 * check_conflicting_open: a write lease is refused while i_writecount or i_readcount counts
 * another).
 * Takes a write lease and lets it go at once; a lease the file cannot have (fs.leases-enable=0,
 * a file system without leases) throws, its errno EINVAL. A memfd's own description, made by
 * memfd_create, is not counted (alloc_file_pseudo takes no write access); one reopened through
 * /proc is. */
static napi_value held_elsewhere(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 1, argv);
  int fd;
  if (!nv_arg_fd(env, argv[0], &fd)) return NULL;
  /* An open(2) of the file while the lease stands breaks it, and the kernel tells the holder
   * with SIGIO, whose default action (Node has no handler) ends the process. SIGURG, ignored by
   * default, tells it instead; the lease goes at once anyway (the opener waits microseconds). */
  if (fcntl(fd, F_SETSIG, SIGURG) < 0) return nv_throw_errno(env, "fcntl(F_SETSIG)", errno);
  if (fcntl(fd, F_SETLEASE, F_WRLCK) < 0) {
    if (errno == EAGAIN) return nv_bool(env, true);
    return nv_throw_errno(env, "fcntl(F_SETLEASE)", errno);
  }
  if (fcntl(fd, F_SETLEASE, F_UNLCK) < 0) return nv_throw_errno(env, "fcntl(F_SETLEASE)", errno);
  return nv_bool(env, false);
}

/* addFileSeals(fd, seals): F_ADD_SEALS (EPERM once F_SEAL_SEAL is set, EINVAL unsealable). */
static napi_value add_file_seals(napi_env env, napi_callback_info info) {
  NV_ARGS(env, info, 2, argv);
  int fd;
  uint32_t seals;
  if (!nv_arg_fd(env, argv[0], &fd)) return NULL;
  if (!nv_arg_uint32(env, argv[1], "seals", &seals)) return NULL;
  if (fcntl(fd, F_ADD_SEALS, (int)seals) < 0) return nv_throw_errno(env, "fcntl", errno);
  return nv_undefined(env);
}

napi_status nv_init_seals(napi_env env, napi_value exports) {
  napi_status s;
  if ((s = nv_export(env, exports, "fileSeals", file_seals)) != napi_ok) return s;
  if ((s = nv_export(env, exports, "isMemoryFile", is_memory_file)) != napi_ok) return s;
  if ((s = nv_export(env, exports, "heldElsewhere", held_elsewhere)) != napi_ok) return s;
  return nv_export(env, exports, "addFileSeals", add_file_seals);
}
