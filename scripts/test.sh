#!/usr/bin/env bash
# Builds linattn and passes every test: the release build (with the CUDA backend when nvcc is
# present; GPU tests skip without a device) and an AddressSanitizer + UBSan build of the CPU
# tests. This is what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
jobs=$(nproc)

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$jobs"
ctest --test-dir build -j "$jobs" --output-on-failure

cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLINATTN_CUDA=OFF \
  -DLINATTN_SANITIZE=ON -DLINATTN_BUILD_BENCH=OFF
cmake --build build-asan -j "$jobs"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan -j "$jobs" -L cpu --output-on-failure
