#!/usr/bin/env bash
# One command for a machine with an NVIDIA GPU: configures (Release, CUDA on), builds every
# target, runs the GPU suite and the CPU suite, runs compute-sanitizer memcheck and racecheck on
# a reduced GPU filter, then `linattn bench --device cuda`, and prints a summary table last.
# Logs go to $OUT when that variable is set, else to <build dir>/gpu-check-logs.
#   BUILD_DIR (default build-gpu), JOBS (default 16), LINATTN_CONFORMANCE_DIR (ONNX node cases;
#   default: the CMake default, or .conformance/onnx in the checkout when present).
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD_DIR:-build-gpu}
JOBS=${JOBS:-16}
LOG=${OUT:-$BUILD/gpu-check-logs}
mkdir -p "$LOG" "$BUILD"

conf=()
if [ -n "${LINATTN_CONFORMANCE_DIR:-}" ]; then
  conf=(-DLINATTN_CONFORMANCE_DIR="$LINATTN_CONFORMANCE_DIR")
elif [ -d .conformance/onnx ]; then
  conf=(-DLINATTN_CONFORMANCE_DIR="$PWD/.conformance/onnx")
fi

names=()
results=()
times=()
step() {  # step NAME command...: runs, logs to $LOG/NAME.log, records PASS/FAIL and seconds
  local name=$1
  shift
  local t0=$SECONDS
  echo "== $name: $*"
  "$@" >"$LOG/$name.log" 2>&1
  local rc=$?
  names+=("$name")
  times+=($((SECONDS - t0)))
  if [ $rc -eq 0 ]; then results+=("PASS"); else results+=("FAIL (rc $rc, see $LOG/$name.log)"); fi
  tail -n 3 "$LOG/$name.log"
  return $rc
}

sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
san_filter='CudaConvPaths/*:Cuda/CudaOracleMatrix.*_T2_*:Cuda/CudaOracleMatrix.*_T65_*dk5dv7*:Cuda/CudaConvMatrix.*L33*:Cuda/CudaConvMatrix.*L1_*:CudaWideSlab/*:CudaExecution.InPlace*:CudaExecution.Graph*:CudaExecution.Chained*'

step device nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
step configure cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLINATTN_CUDA=ON "${conf[@]}"
if step build cmake --build "$BUILD" -j "$JOBS"; then
  step gpu_tests ctest --test-dir "$BUILD" -L gpu -j 4 --output-on-failure
  step cpu_tests ctest --test-dir "$BUILD" -L cpu -j "$JOBS" --output-on-failure
  step memcheck "$sanitizer" --tool memcheck --error-exitcode 1 \
    "$BUILD/tests/test_cuda_oracle_matrix" --gtest_brief=1 --gtest_filter="$san_filter"
  step memcheck_exec "$sanitizer" --tool memcheck --error-exitcode 1 \
    "$BUILD/tests/test_cuda_execution" --gtest_brief=1 --gtest_filter="$san_filter"
  step racecheck "$sanitizer" --tool racecheck --racecheck-report all --error-exitcode 1 \
    "$BUILD/tests/test_cuda_oracle_matrix" --gtest_brief=1 --gtest_filter="$san_filter"
  step memcheck_chunked "$sanitizer" --tool memcheck --error-exitcode 1 \
    "$BUILD/tests/test_chunked_prefill" --gtest_brief=1 \
    --gtest_filter='ChunkedPrefill.Rules:ChunkedPrefill.Segments'
  step racecheck_chunked "$sanitizer" --tool racecheck --racecheck-report all --error-exitcode 1 \
    "$BUILD/tests/test_chunked_prefill" --gtest_brief=1 --gtest_filter='ChunkedPrefill.Rules'
  step bench "$BUILD/tools/linattn" bench --device cuda --json "$LOG/bench.json"
  step bench_chunked "$BUILD/tools/linattn" bench --device cuda --chunked-prefill
fi

echo
echo "gpu-check summary (logs in $LOG)"
printf '%-14s %6s  %s\n' step seconds result
for i in "${!names[@]}"; do printf '%-14s %6s  %s\n' "${names[$i]}" "${times[$i]}" "${results[$i]}"; done
if [ -f "$LOG/bench.log" ]; then
  echo
  sed -n '/^case/,$p' "$LOG/bench.log" | head -n 20
fi
if [ -f "$LOG/bench_chunked.log" ]; then
  echo
  tail -n 12 "$LOG/bench_chunked.log"
fi
for r in "${results[@]}"; do [ "$r" = PASS ] || exit 1; done
exit 0
