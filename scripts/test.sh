#!/usr/bin/env bash
# Sets up, builds, and runs every test (GoogleTest units and the lit suite)
# through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
cd "$BUILD_DIR"
ctest --output-on-failure -j "${JOBS:-2}" --timeout 900
