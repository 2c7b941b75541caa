#!/bin/bash
# Builds ik_llama.cpp's ggml (CPU only, Release, native) from a checkout
# OUTSIDE this repository, and the side-by-side harness against it.
#   IK=/path/to/ik_llama.cpp   (commit 8337e4cd; e.g. a `git archive` of it)
#   OUT=/tmp/ik-moebench       (build directory, outside the repository)
#   IK_AVX2=1                  (optional: AVX2 + FMA + F16C code only, not
#                               -march=native, to measure beside moe's
#                               x86-64-v3 kernels (--moe_cpu=x86-64-v3) on an
#                               AVX-512 host; use another OUT)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
IK=${IK:?set IK to an ik_llama.cpp checkout (commit 8337e4cd) outside the repository}
OUT=${OUT:-/tmp/ik-moebench}
mkdir -p "$OUT"
ARCH=(-DGGML_NATIVE=ON)
MARCH=native
if [ "${IK_AVX2:-0}" = 1 ]; then
  ARCH=(-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF)
  MARCH=x86-64-v3
fi
if [ ! -f "$OUT/build/ggml/src/libggml.a" ]; then
  nice -n 19 cmake -S "$IK" -B "$OUT/build" -G Ninja -DCMAKE_BUILD_TYPE=Release "${ARCH[@]}" \
    -DBUILD_SHARED_LIBS=OFF -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_BLAS=OFF -DGGML_VULKAN=OFF \
    -DGGML_SYCL=OFF -DGGML_RPC=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_SERVER=OFF -DGGML_CCACHE=OFF -DLLAMA_CURL=OFF
  nice -n 19 cmake --build "$OUT/build" --target ggml -j2
fi
nice -n 19 g++ -O3 -march=$MARCH -std=c++17 -Wall -Wextra -Wno-unused-parameter \
  -I "$IK/ggml/include" "$HERE/ik_moebench.cpp" -o "$OUT/moebench" \
  "$OUT/build/ggml/src/libggml.a" -fopenmp -lpthread -lm
echo "${IK_COMMIT:-8337e4cd}$([ "$MARCH" = native ] || echo " ($MARCH)")" > "$OUT/COMMIT_BUILT"
echo "built $OUT/moebench"
