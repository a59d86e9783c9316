#!/usr/bin/env bash
# Chunked prefill on a GPU machine: builds the test and the benchmark (Release, CUDA) unless a
# folder with prebuilt test_chunked_prefill and chunked_bench is given, runs both, and prints
# the timing table last. Logs go to $LOG_DIR (default /tmp).
# Usage: scripts/chunked-check.sh [PREBUILT_DIR]
set -uo pipefail
cd "$(dirname "$0")/.."
log=${LOG_DIR:-/tmp}
if [ -n "${1:-}" ]; then
  test_bin=$1/test_chunked_prefill bench_bin=$1/chunked_bench
else
  cmake -S . -B build-chunked-check -G Ninja -DCMAKE_BUILD_TYPE=Release -DLINATTN_CUDA=ON >/dev/null &&
    cmake --build build-chunked-check -j16 --target test_chunked_prefill chunked_bench || exit 1
  test_bin=build-chunked-check/tests/test_chunked_prefill
  bench_bin=build-chunked-check/bench/chunked_bench
fi
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader
"$test_bin" 2>&1 > "$log/chunked_test.log"
test_rc=$?
grep -E "^\[chunked\]|Failure|FAILED|PASSED|Expected|Which is|actual" "$log/chunked_test.log" | head -80
echo "test exit code: $test_rc"
"$bench_bin" "$@" 2>&1 | tee "$log/chunked_bench.log"
