#!/bin/sh
# Installs libsbx_comms into a temporary prefix, then builds and runs examples/c-comms against
# it twice: through the CMake package (find_package) and through pkg-config.
# Exits non-zero on the first failure. Usage: examples/c-comms/run.sh
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sbx-c-comms.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
prefix="$tmp/prefix"

echo "== install libsbx_comms into $prefix"
cmake -S "$root/native" -B "$tmp/lib" -DSBX_BUILD_TESTS=OFF >/dev/null
cmake --build "$tmp/lib" --target sbx_comms sbx_comms_shared
# Only the comms component: the rest of the tree may not be built (or installable) here.
cmake --install "$tmp/lib" --prefix "$prefix" --component comms

echo "== build with find_package(sbx_comms CONFIG)"
cmake -S "$here" -B "$tmp/example" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$tmp/example"
"$tmp/example/c_comms"

echo "== build with pkg-config"
libdir=$(ls -d "$prefix"/lib*/pkgconfig | head -n 1)
flags=$(PKG_CONFIG_PATH="$libdir" pkg-config --cflags --libs sbx_comms)
echo "pkg-config: $flags"
# shellcheck disable=SC2086 # the flags are meant to split
cc -std=c99 -Wall -Wextra -Werror -o "$tmp/c_comms_pc" "$here/main.c" $flags
LD_LIBRARY_PATH="$(dirname "$libdir")" "$tmp/c_comms_pc"

echo "== c-comms example: OK"
