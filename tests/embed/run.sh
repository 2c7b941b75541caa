#!/bin/bash
# examples/embed as an outside project: install moe into a fresh prefix, then
# configure and build the example against the installed package
# (find_package(moe CONFIG REQUIRED)) and run it from another directory.
# Usage: run.sh BUILD_DIR SOURCE_DIR WORK_DIR GENERATOR [CMAKE_ARGS...]
# (a sanitized build passes its compiler and -fsanitize link flags, which a
# program linking a sanitized libmoe needs too).
set -euo pipefail
build=$1 src=$2 work=$3 gen=$4
shift 4
rm -rf "$work"
mkdir -p "$work"
cmake --install "$build" --component dev --prefix "$work/prefix" >"$work/install.log"
cmake -S "$src/examples/embed" -B "$work/build" -G "$gen" \
  -DCMAKE_PREFIX_PATH="$work/prefix" "$@" >"$work/configure.log"
cmake --build "$work/build" >"$work/build.log"
cd /
MOE_CACHE_DIR="$work/cache" "$work/build/moe-embed" | tee "$work/out.txt"
grep -q '^output 0: f32 \[5, 32\] sum=' "$work/out.txt"
# The queries, the run into caller memory (T inferred) and the error kind.
grep -qx 'symbol T in \[1, 256\]' "$work/out.txt"
grep -qxF 'result 0 at T = 5: f32 [5, 32] (tensor<T x 32 x f32>)' "$work/out.txt"
grep -qx 'into caller memory, T inferred: equal' "$work/out.txt"
grep -qxF 'shape error: %x: expected [5, 32] (T x 32 with T = 5), got [7, 32]' "$work/out.txt"
# Twice: the second run links the cached object.
MOE_CACHE_DIR="$work/cache" "$work/build/moe-embed" | cmp - "$work/out.txt"
# A layer imported from a GGUF model, its weights bound from the mapped file
# through the library (bindGgufParams): the output equals moe-run --weights'.
"$build/tools/moe-gguf" tiny gemma4 --type q8_0 --merged-gate-up -o "$work/g.gguf"
"$build/tools/moe-import" "$work/g.gguf" --layer 1 -o "$work/g.moe"
MOE_CACHE_DIR="$work/cache" "$work/build/moe-embed-gguf" "$work/g.moe" "$work/g.gguf" 7 |
  tee "$work/gguf.txt"
# The same input as moe-embed-gguf's: x[t, i] = cos(0.11 * (t * 64 + i)).
/usr/bin/python3 -c "import numpy as np, sys; np.save(sys.argv[1], np.cos(np.float32(0.11) * np.arange(7 * 64, dtype=np.float32)).reshape(7, 64))" "$work/x.npy"
"$build/tools/moe-run" "$work/g.moe" -p default --weights "$work/g.gguf" --sym T=7 \
  --input x="$work/x.npy" --output "$work/run" >/dev/null
/usr/bin/python3 - "$work" <<'PY'
import re, sys
import numpy as np
w = sys.argv[1]
line = open(f"{w}/gguf.txt").read()
m = re.search(r"output 0: f32 \[7, 64\] sum=(\S+) max_abs=(\S+)", line)
assert m, line
got = np.load(f"{w}/run/result0.npy").astype(np.float64)
s, a = float(m.group(1)), float(m.group(2))
assert abs(s - got.sum()) <= 1e-5 * max(1.0, abs(got).sum()), (s, got.sum())
assert abs(a - abs(got).max()) <= 1e-6 * abs(got).max(), (a, abs(got).max())
print("moe-embed-gguf equals moe-run --weights")
PY
# A split function (default,tp-split{ranks=2},delay-allreduce) through the
# library on 2 in-process ranks, and under mpirun -np 2 (one rank per
# process) where MPI is installed: both equal moe-run --ranks 2 bit for bit.
# moe-embed-split's input, exactly: x.flat[i] = ((37 i) mod 101 - 50) / 64.
/usr/bin/python3 -c "import numpy as np, sys; np.save(sys.argv[1], (((np.arange(7 * 64) * 37) % 101 - 50) / 64).astype(np.float32).reshape(7, 64))" "$work/xs.npy"
"$build/tools/moe-run" "$src/examples/qwen3_tiny.moe" -p 'default,tp-split{ranks=2},delay-allreduce' \
  --ranks 2 --seed 3 --sym T=7 --input x="$work/xs.npy" --output "$work/split-run" >/dev/null
MOE_CACHE_DIR="$work/cache" "$work/build/moe-embed-split" "$src/examples/qwen3_tiny.moe" 7 3 \
  "$work/split.f32" | tee "$work/split.txt"
grep -q '^output 0: f32 \[7, 64\] on 2 ranks sum=' "$work/split.txt"
same_as_moe_run() {
  /usr/bin/python3 - "$work/split-run/result0.npy" "$1" <<'PY'
import sys
import numpy as np
want = np.load(sys.argv[1])
got = np.fromfile(sys.argv[2], dtype=np.float32).reshape(want.shape)
assert got.tobytes() == want.tobytes(), abs(got - want).max()
print(sys.argv[2], "equals moe-run --ranks 2")
PY
}
same_as_moe_run "$work/split.f32"
if command -v mpirun >/dev/null && grep -q '^MPI_C_LIB_NAMES:STRING=.' "$build/CMakeCache.txt"; then
  # In the sanitized tree MPI ranks run without LSan, as in lit (Open MPI's
  # allocations from plugins it has unloaded cannot be attributed).
  asan=()
  [[ -n ${ASAN_OPTIONS:-} ]] && asan=(-x "ASAN_OPTIONS=${ASAN_OPTIONS/detect_leaks=1/detect_leaks=0}")
  MOE_CACHE_DIR="$work/cache" timeout 120 mpirun --allow-run-as-root --mca btl self,vader \
    --oversubscribe "${asan[@]}" -np 2 "$work/build/moe-embed-split" "$src/examples/qwen3_tiny.moe" 7 3 \
    "$work/split-mpi.f32" --mpi | tee "$work/split-mpi.txt"
  grep -q '^output 0: f32 \[7, 64\] on 2 ranks (MPI) sum=' "$work/split-mpi.txt"
  same_as_moe_run "$work/split-mpi.f32"
fi
