#!/usr/bin/env bash
# Sets up, builds, and runs every test, twice:
#  1. the Release build (./build): GoogleTest units, the lit suite, the
#     embedding example, through ctest;
#  2. an ASan+UBSan (+LSan) build with clang-19 (./build-asan), which also
#     builds the libFuzzer targets: the same ctest suite there, plus each fuzz
#     target for MOE_FUZZ_SECONDS (20) from its seed corpus. SANITIZE=0 skips
#     this half.
# Both trees use ccache when it is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
t0=$SECONDS
(cd "$BUILD_DIR" && ctest --output-on-failure -j "${JOBS:-2}" --timeout 900)
echo "test.sh: Release suite passed in $((SECONDS - t0)) s"
[[ ${SANITIZE:-1} == 0 ]] && exit 0

t0=$SECONDS
bash scripts/setup-sanitized.sh
echo "test.sh: sanitized build took $((SECONDS - t0)) s"
t0=$SECONDS
ASAN_BUILD_DIR=${ASAN_BUILD_DIR:-build-asan}
(cd "$ASAN_BUILD_DIR" && ctest --output-on-failure -j "${JOBS:-2}" --timeout 1800)
echo "test.sh: sanitized suite and fuzzing passed in $((SECONDS - t0)) s"
