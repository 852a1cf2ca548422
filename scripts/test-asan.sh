#!/bin/sh
# Runs tests (default: the native addon's) against an ASan/UBSan build of the addon, built in a
# temporary directory from native/ and binding.gyp (the normal build is left alone); the addon
# is loaded through VFIO_NVLINK2_ADDON, the sanitizer runtimes preloaded into node.
# Usage: npm run test:asan [-- FILE.test.ts ...]
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$root/native" "$root/binding.gyp" "$work/"
flags='-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined'
(cd "$work" && CFLAGS="$flags" CXXFLAGS="$flags" LDFLAGS="-fsanitize=address,undefined" \
  node "$(dirname "$(command -v npm)")/../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js" \
  rebuild --nodedir="$(npm config get nodedir)" >/dev/null)
[ $# -gt 0 ] || set -- "$root"/src/native/*.test.ts
export VFIO_NVLINK2_ADDON="$work/build/Release/vfio_nvlink2_native.node"
export LD_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS=detect_leaks=0
node "$root/scripts/run-tests.mjs" --no-build "$@"
