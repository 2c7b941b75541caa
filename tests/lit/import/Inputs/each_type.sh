#!/bin/bash
# Usage: each_type.sh DIR ARCH [moe-gguf tiny flags...]
#
# For each weight type (f32, f16, bf16, q8_0, q4_0, mxfp4): writes a tiny
# ARCH model with `moe-gguf tiny`, imports block 1 and runs it with the
# file's weights -- `moe-import tiny.gguf --layer 1 | moe-run - --weights
# tiny.gguf --sym T=7 --input x=x.npy` -- on the JIT and on the interpreter,
# on one rank and with -p 'default,tp-split{ranks=N},delay-allreduce'
# --ranks N for each N > 1 of $RANKS (default "1 2"; ranks simulated in
# process); each result is compared with the NumPy reference of
# moe_ref.py, which reads the same file with its own GGUF reader and
# dequantisers (normalised squared error <= 1e-8 for f32 weights, 5e-4 for
# the others: ggml's test-backend-ops thresholds), once a type's runs are
# done. Prints one line per run:
#   ARCH TYPE ENGINE RANKS: match (shape [7, 64], nse <= TOL)
# and stops at the first failure (exit 1).
set -eu -o pipefail
dir=$1 arch=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-python3}
mkdir -p "$dir"
x=$dir/x.npy
[ -f "$x" ] || "$py" -c "import numpy as np; np.save('$x', np.random.default_rng(19).standard_normal((7, 64)).astype(np.float32))"
for type in f32 f16 bf16 q8_0 q4_0 mxfp4; do
  m=$dir/$arch-$type.gguf
  moe-gguf tiny "$arch" --type "$type" "$@" -o "$m"
  tol=5e-4
  [ "$type" = f32 ] && tol=1e-8
  runs=()
  for engine in jit interp; do
    for ranks in ${RANKS:-1 2}; do
      out=$dir/out-$arch-$type-$engine-$ranks
      pipeline=()
      [ "$ranks" != 1 ] && pipeline=(-p "default,tp-split{ranks=$ranks},delay-allreduce" --ranks "$ranks")
      moe-import "$m" --layer 1 |
        moe-run - ${pipeline[@]+"${pipeline[@]}"} --engine="$engine" --weights "$m" \
          --sym T=7 --input x="$x" --output "$out" > /dev/null
      runs+=("$arch $type $engine $ranks" "$out/result0.npy")
    done
  done
  # The reference and every comparison in one process: NumPy starts once
  # per type, not once per run (it was most of these tests' time).
  "$py" "$here/moe_ref.py" check "$m" 1 "$x" "$tol" "${runs[@]}"
done
