#!/usr/bin/env bash
# Builds the libFuzzer targets (SBX_FUZZ=ON, clang) into native/build-fuzz and runs each one for
# SECONDS (default 20), starting from the committed seeds in native/fuzz/corpus/<target>.
#   native/fuzz/run.sh [SECONDS] [TARGET...]
# New inputs go to native/build-fuzz/corpus/<target> (kept between runs); a crash, leak or
# broken invariant is written to native/build-fuzz/artifacts/ and makes the script exit 1.
# Needs: clang and libFuzzer (Debian: apt-get install clang libclang-rt-14-dev), cmake, ninja or make.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
native="$(dirname "$here")"
out="$native/build-fuzz"
seconds="${1:-20}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_comms_recv fuzz_request_parse)

if ! command -v clang >/dev/null; then
  echo "fuzz: clang is required (Debian: apt-get install clang libclang-rt-14-dev)" >&2
  exit 1
fi
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if [ ! -f "$out/CMakeCache.txt" ]; then
  CC=clang CXX=clang++ cmake -S "$native" -B "$out" "${generator[@]}" -DSBX_FUZZ=ON -DSBX_BUILD_TESTS=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$out" --target "${targets[@]}" -j "$(nproc)" >/dev/null

mkdir -p "$out/artifacts"
status=0
for t in "${targets[@]}"; do
  work="$out/corpus/$t"
  mkdir -p "$work"
  log="$out/$t.log"
  echo "=== $t: ${seconds}s"
  # UBSan and ASan findings abort (and so are crashes); LeakSanitizer runs at the end.
  if ! UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
    "$out/fuzz/$t" "$work" "$here/corpus/$t" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$out/artifacts/$t-" >"$log" 2>&1; then
    status=1
    echo "$t: FAILED (see $log; reproduce with $out/fuzz/$t $out/artifacts/$t-*)"
    grep -E "ERROR|invariant|leaked|SUMMARY" "$log" | head -20 || true
  fi
  cov="$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9a-zA-Z]+' || true)"
  execs="$(grep -E 'stat::number_of_executed_units' "$log" | awk '{print $2}' || true)"
  rate="$(grep -E 'stat::average_exec_per_sec' "$log" | awk '{print $2}' || true)"
  echo "$t: ${execs:-?} runs, ${rate:-?} exec/s, ${cov:-no final stats}"
done
exit $status
