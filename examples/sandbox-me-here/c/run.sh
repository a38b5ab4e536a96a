#!/bin/sh
# Installs libsbx_comms and libsbx_client into a temporary prefix, builds this example against
# them (find_package(sbx_client)), then runs it in a sandbox-me-here sandbox through
# ../run-c.mjs, which sends it text over Comms. Usage: examples/sandbox-me-here/c/run.sh
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sbx-me-here-c.XXXXXX")
chmod 755 "$tmp" # as root the sandboxee is host nobody: it must reach the binary
trap 'rm -rf "$tmp"' EXIT INT TERM
prefix="$tmp/prefix"

echo "== install libsbx_comms and libsbx_client into $prefix"
cmake -S "$root/native" -B "$tmp/lib" -DSBX_BUILD_TESTS=OFF >/dev/null
cmake --build "$tmp/lib" --target sbx_comms sbx_comms_shared sbx_client sbx_client_shared
cmake --install "$tmp/lib" --prefix "$prefix" --component comms
cmake --install "$tmp/lib" --prefix "$prefix" --component client

echo "== build with find_package(sbx_client CONFIG)"
cmake -S "$here" -B "$tmp/example" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$tmp/example"

echo "== run it in a sandbox"
node "$here/../run-c.mjs" "$tmp/example/me_here_c"
