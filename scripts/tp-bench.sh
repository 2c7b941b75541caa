#!/usr/bin/env bash
# Times each real-size layer split over 2 ranks, with and without
# delay-allreduce, as MPI processes (`mpirun -np 2 moe-run --mpi`) and as
# in-process ranks (`moe-run --ranks 2`), one thread per rank in both, with
# `--time --repeat N --profile`: the arguments are bound once, each run is
# timed alone (under MPI from a barrier; the run's time is the slowest
# rank's), and the profile gives the bytes each rank all-reduces per run.
# The benchmark's in-process counterpart is `MoeLayerBench
# --benchmark_filter='moe_tp2/...'` (bench/TpBench.cpp).
#
# Usage: scripts/tp-bench.sh [OUT.csv]
#   env LAYERS="qwen3 gemma4 gptoss"  TYPES="q8_0"  TS="128 512"  REPEAT=5
#       MODES="mpi inproc"  BUILD_DIR=build
# Prints (and writes to OUT.csv, when given) one line per run:
#   mode,layer,type,T,allreduce,median_ms,min_ms,rank0_ms,rank1_ms,allreduce_bytes
# followed by the load average, since the machine may be shared. Each
# moe-run generates the whole weights on every rank first (tens of seconds
# for a real-size layer): only the runs are timed.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${BUILD_DIR:-build}/tools
LAYERS=${LAYERS:-"qwen3 gemma4 gptoss"}
TYPES=${TYPES:-q8_0}
TS=${TS:-"128 512"}
REPEAT=${REPEAT:-5}
MODES=${MODES:-"mpi inproc"}
out=${1:-}
mpirun_cmd=(mpirun --allow-run-as-root --mca btl self,vader --oversubscribe -np 2)

header=mode,layer,type,T,allreduce,median_ms,min_ms,rank0_ms,rank1_ms,allreduce_bytes
echo "$header"
[ -n "$out" ] && echo "$header" > "$out"
echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for layer in $LAYERS; do
  for type in $TYPES; do
    for T in $TS; do
      for delay in nodelay delay; do
        pipeline='default,tp-split{ranks=2}'
        [ "$delay" = delay ] && pipeline+=',delay-allreduce'
        for mode in $MODES; do
          args=(examples/$layer.moe -p "$pipeline" --weight-type="$type" --sym T="$T"
                --threads 1 --time --repeat "$REPEAT" --profile)
          if [ "$mode" = mpi ]; then
            text=$(timeout 1200 "${mpirun_cmd[@]}" "$B/moe-run" --mpi "${args[@]}")
          else
            text=$(timeout 1200 "$B/moe-run" --ranks 2 "${args[@]}")
          fi
          # run: <median> ms (... min <min> ms ...); run rank R: <median> ms ...
          line=$(awk -v pre="$mode,$layer,$type,$T,$delay" '
            /^run: / { med = $2; if (match($0, /min [0-9.]+ ms/)) mn = substr($0, RSTART + 4, RLENGTH - 7); else mn = med }
            /^run rank 0: / { r0 = $4 }
            /^run rank 1: / { r1 = $4 }
            /^all_reduce: / { bytes = $2 }
            END { printf "%s,%s,%s,%s,%s,%s\n", pre, med, mn, r0, r1, bytes }' <<<"$text")
          echo "$line"
          [ -n "$out" ] && echo "$line" >> "$out"
        done
      done
    done
  done
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
