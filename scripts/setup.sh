#!/usr/bin/env bash
# Installs what linattn needs on a fresh Debian/Ubuntu machine: the build tools and GoogleTest
# (Debian packages) and the Python packages of requirements.txt (numpy, onnx, onnxruntime for
# the peer tests). Installs only what is missing; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pkg in cmake ninja-build g++ libgtest-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if ! command -v python3 >/dev/null 2>&1; then need+=(python3 python3-pip); fi
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi

if ! python3 -c "import numpy, onnx, onnxruntime" >/dev/null 2>&1; then
  python3 -m pip install -q -r requirements.txt 2>/dev/null ||
    python3 -m pip install -q --break-system-packages -r requirements.txt
fi
