{
  "targets": [
    {
      "target_name": "vfio_nvlink2_native",
      "sources": [
        "native/addon.c",
        "native/common.c",
        "native/constants.c",
        "native/copy.c",
        "native/digest.c",
        "native/eventfd.c",
        "native/fastpath.c",
        "native/fds.c",
        "native/hash.c",
        "native/memory.c",
        "native/relay.c",
        "native/scm.c",
        "native/seals.c",
        "native/watcher.c"
      ],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"],
      "defines": ["NAPI_VERSION=8"],
      "libraries": ["-lrt"]
    },
    {
      "target_name": "vfio_nvlink2_echo_floor",
      "type": "executable",
      "sources": ["native/echo-floor.c"],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-O2"]
    }
  ]
}
