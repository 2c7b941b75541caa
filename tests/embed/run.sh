#!/bin/bash
# examples/embed as an outside project: install moe into a fresh prefix, then
# configure and build the example against the installed package
# (find_package(moe CONFIG REQUIRED)) and run it from another directory.
# Usage: run.sh BUILD_DIR SOURCE_DIR WORK_DIR GENERATOR
set -euo pipefail
build=$1 src=$2 work=$3 gen=$4
rm -rf "$work"
mkdir -p "$work"
cmake --install "$build" --component dev --prefix "$work/prefix" >"$work/install.log"
cmake -S "$src/examples/embed" -B "$work/build" -G "$gen" \
  -DCMAKE_PREFIX_PATH="$work/prefix" >"$work/configure.log"
cmake --build "$work/build" >"$work/build.log"
cd /
MOE_CACHE_DIR="$work/cache" "$work/build/moe-embed" | tee "$work/out.txt"
grep -q '^output 0: f32 \[5, 32\] sum=' "$work/out.txt"
# Twice: the second run links the cached object.
MOE_CACHE_DIR="$work/cache" "$work/build/moe-embed" | cmp - "$work/out.txt"
