#!/usr/bin/env bash
# Installs clang-19 and its runtimes (Debian 12), then configures and builds
# the ASan+UBSan tree with the libFuzzer targets in ./build-asan (or
# $ASAN_BUILD_DIR): clang, -O1 -g1 with assertions on, MOE_SANITIZE and
# MOE_FUZZ, without the benchmark. Its ctest runs with the sanitizer options of tests/sanitizers/,
# and links the kernels the Release tree's tests compiled (the JIT object
# cache of ./build or $BUILD_DIR: same IR, same object).
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS=(clang-19 libclang-rt-19-dev)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  echo "setup-sanitized: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
B=${ASAN_BUILD_DIR:-build-asan}
CC=clang-19 CXX=clang++-19 cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -g1" "-DCMAKE_C_FLAGS_DEBUG=-O1 -g1" \
  -DMOE_SANITIZE=ON -DMOE_FUZZ=ON -DMOE_FUZZ_SECONDS="${MOE_FUZZ_SECONDS:-20}" \
  -DMOE_TEST_JIT_CACHE="$PWD/${BUILD_DIR:-build}/tests/jit-cache" -DMOE_BENCH=OFF \
  -DMOE_REFERENCE_TOOLS_DIR="$PWD/${BUILD_DIR:-build}/tools" \
  -DCMAKE_UNITY_BUILD="${MOE_UNITY_BUILD:-ON}" \
  "${launcher[@]}" >/dev/null
cmake --build "$B" -j "${JOBS:-2}"
