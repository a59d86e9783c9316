#!/usr/bin/env bash
# Builds linattn and runs the main job: a Qwen3.5-shaped GatedDeltaNet layer (causal conv and
# linear attention over a 4096-token prompt, then 64 decode steps), checked against the oracle.
# Runs on CUDA when a GPU is visible, else on the CPU. Extra arguments go to `linattn run`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DLINATTN_BUILD_TESTS=OFF
cmake --build build -j "$(nproc)" --target linattn_cli
# auto: CUDA when this build has it and a device is visible, else the CPU.
exec build/tools/linattn run --device auto "$@"
