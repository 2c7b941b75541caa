#!/usr/bin/env bash
# Installs what moe needs on Debian 12 (as root, or with sudo), then configures
# and builds it in ./build. Safe to re-run: installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(cmake ninja-build g++ llvm-19-dev llvm-19-tools libfmt-dev libgtest-dev
      libbenchmark-dev python3 python3-numpy openmpi-bin libopenmpi-dev
      python3-dev pybind11-dev python3-pytest)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" -j "${JOBS:-2}"
