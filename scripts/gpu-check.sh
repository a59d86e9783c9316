#!/usr/bin/env bash
# One command for a machine with an NVIDIA GPU: configures (Release, CUDA on), builds every
# target, runs the GPU suite and the CPU suite, runs compute-sanitizer memcheck and racecheck on
# a reduced GPU filter and over the serving tests, then `linattn bench --device cuda` (decode and
# conv sweep, chunked prefill table, prefill length sweep with its plot), and prints a summary
# table last. Logs go to <build dir>/gpu-check-logs; when $OUT is set, the main logs, the plot
# (gpu_prefill.svg) and an archive of all logs are copied there.
#   BUILD_DIR (default build-gpu), JOBS (default 16), LINATTN_CONFORMANCE_DIR (ONNX node cases;
#   default: the CMake default, or .conformance/onnx in the checkout when present),
#   PARTS (all (default) | tests | bench | sm80: the build, then only the tests and sanitizers,
#   or only the serving simulation and the benchmarks, for machines with a per-command time
#   limit; sm80 builds for sm_80 alone in <build dir>-sm80 and runs the GPU suite there, which on
#   a Hopper GPU exercises the code other architectures run: mma.sync and ldmatrix instead of
#   wgmma, plain loads instead of bulk copies).
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD_DIR:-build-gpu}
JOBS=${JOBS:-16}
PARTS=${PARTS:-all}
LOG=$BUILD/gpu-check-logs
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
san_filter='CudaConvPaths/*:Cuda/CudaOracleMatrix.*_T2_*:Cuda/CudaOracleMatrix.*_T65_*dk5dv7*:Cuda/CudaConvMatrix.*L33*:Cuda/CudaConvMatrix.*L1_*:CudaWideSlab/*:CudaExecution.InPlace*:CudaExecution.ConvInPlace*:CudaExecution.Graph*:CudaExecution.Chained*'

step device nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
if [ "$PARTS" = sm80 ]; then
  step configure_sm80 cmake -S . -B "$BUILD-sm80" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLINATTN_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES=80 -DLINATTN_BUILD_BENCH=OFF "${conf[@]}" &&
    step build_sm80 cmake --build "$BUILD-sm80" -j "$JOBS" &&
    step gpu_tests_sm80 ctest --test-dir "$BUILD-sm80" -L gpu -j 4 --output-on-failure
  echo
  echo "gpu-check summary, sm_80 build (logs in $LOG)"
  for i in "${!names[@]}"; do printf '%-14s %6s  %s\n' "${names[$i]}" "${times[$i]}" "${results[$i]}"; done
  [ -n "${OUT:-}" ] && tar -czf "$OUT/gpu-check-sm80-logs.tar.gz" -C "$LOG" .
  for r in "${results[@]}"; do [ "$r" = PASS ] || exit 1; done
  exit 0
fi
step configure cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLINATTN_CUDA=ON "${conf[@]}"
if step build cmake --build "$BUILD" -j "$JOBS" && [ "$PARTS" != bench ]; then
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
    --gtest_filter='ChunkedPrefill.Rules:ChunkedPrefill.Segments:ChunkedPrefill.PrefixSegments:ChunkedPrefill.PWarpgroup:ChunkedPrefill.PairedSlabs:ChunkedPrefill.WholeHead'
  step racecheck_chunked "$sanitizer" --tool racecheck --racecheck-report all --error-exitcode 1 \
    "$BUILD/tests/test_chunked_prefill" --gtest_brief=1 --gtest_filter='ChunkedPrefill.Rules:ChunkedPrefill.PWarpgroup:ChunkedPrefill.PairedSlabs'
  # The serving kernels: memcheck and racecheck on the tests that reach every serving kernel
  # path at small shapes (the reference-shape and long cases would only add minutes).
  serving_san() {  # serving_san TEST MEMCHECK_FILTER RACECHECK_FILTER
    [ -x "$BUILD/tests/$1" ] || return 0
    step "memcheck_${1#test_}" "$sanitizer" --tool memcheck --error-exitcode 1 "$BUILD/tests/$1" \
      --gtest_brief=1 --gtest_filter="$2"
    step "racecheck_${1#test_}" "$sanitizer" --tool racecheck --racecheck-report all \
      --error-exitcode 1 "$BUILD/tests/$1" --gtest_brief=1 --gtest_filter="$3"
  }
  serving_san test_cuda_serving_attention '-*ReferenceShape*' \
    '*VarlenRows:*PoolMixedBatch:*Speculative*:*IndexError*:*ValueMajor*'
  serving_san test_cuda_serving_conv '*' '*'
  serving_san test_chunked_serving '*VarlenPoolInPlace:*Checkpoints:*OutOfRange*:*FusedL2Norm*:*PrefixSegments' \
    '*VarlenPoolInPlace'
fi
if [ -f "$BUILD/tools/linattn" ] && [ "$PARTS" != tests ] && [ "${results[2]:-}" = PASS ]; then
  # The serving simulation on the device, checked call by call against the oracle.
  step serving_sim "$BUILD/tools/linattn" run --scenario serving --device cuda --spec-len 3 --steps 48
  step serving_sim_ref "$BUILD/tools/linattn" run --scenario serving --device cuda --q-heads 16 \
    --kv-heads 32 --head-dim 128 --steps 6 --prompt-max 200 --prefill-chunk 128
  step bench "$BUILD/tools/linattn" bench --device cuda --json "$LOG/bench.json"
  step bench_chunked "$BUILD/tools/linattn" bench --device cuda --chunked-prefill
  step bench_sweep "$BUILD/tools/linattn" bench --device cuda --prefill-sweep --plot "$LOG/gpu_prefill.svg"
fi

echo
echo "gpu-check summary (logs in $LOG)"
printf '%-14s %6s  %s\n' step seconds result
for i in "${!names[@]}"; do printf '%-14s %6s  %s\n' "${names[$i]}" "${times[$i]}" "${results[$i]}"; done
if [ -f "$LOG/bench.log" ]; then
  echo
  sed -n '/^case/,$p' "$LOG/bench.log" | head -n 40
fi
if [ -f "$LOG/bench_chunked.log" ]; then
  echo
  tail -n 12 "$LOG/bench_chunked.log"
fi
if [ -f "$LOG/bench_sweep.log" ]; then
  echo
  grep -E '^ +[0-9]' "$LOG/bench_sweep.log" | awk '$1 == 1 && $2 >= 1024'
fi
if [ -n "${OUT:-}" ]; then
  for f in gpu_tests.log bench.log bench_chunked.log bench_sweep.log gpu_prefill.svg; do
    [ -f "$LOG/$f" ] && cp "$LOG/$f" "$OUT/"
  done
  tar -czf "$OUT/gpu-check-logs.tar.gz" -C "$LOG" .
fi
for r in "${results[@]}"; do [ "$r" = PASS ] || exit 1; done
exit 0
