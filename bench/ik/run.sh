#!/bin/bash
# Full ik_llama.cpp MoE-layer matrix on this machine -> /work/ikbench/ik-<date>.csv
#   the layers (qwen3moe, gpt-oss, gemma4) x 4 expert types (f32 bf16 q8_0 q4_0) x T = 1,128,512,
#   variants stored, stored+fused_ops, repacked(rtr), repacked(rtr)+fused_ops (repacked only where the
#   type has a repacked form: bf16 -> bf16_r16, q8_0 -> q8_0_r8, q4_0 -> q4_0_r8; not f32), 2 threads.
# One moebench process per (layer, type): weights generated once, stored variants timed, weights repacked
# in place (iqk_repack_tensor, as --rtr), repacked variants timed. Probes (# lines) before each process.
# A correctness check (small case vs a naive reference) runs first unless CHECK=0.
#
# Environment overrides:
#   ARCHS="qwen3moe gpt-oss gemma4"  TYPES="f32 bf16 q8_0 q4_0"  TS=1,128,512
#   VARIANTS=stored,stored+fused_ops,repacked,repacked+fused_ops   THREADS=2
#   EXTRA="..." (more moebench options, e.g. "--min-time 3")   NICE=19 (priority; 0 on an idle machine)
#   OUT=/path/file.csv   CHECK=0|1
set -euo pipefail
HERE_SRC=$(cd "$(dirname "$0")" && pwd)
OUTDIR=${OUTDIR:-/tmp/ik-moebench}
cd "$OUTDIR"
HERE=$(pwd)

ARCHS=${ARCHS:-"qwen3moe gpt-oss gemma4"}
TYPES=${TYPES:-"f32 bf16 q8_0 q4_0"}
TS=${TS:-1,128,512}
VARIANTS=${VARIANTS:-stored,stored+fused_ops,repacked,repacked+fused_ops}
THREADS=${THREADS:-2}
EXTRA=${EXTRA:-}
NICE=${NICE:-19}
CHECK=${CHECK:-1}
OUT=${OUT:-$HERE/ik-$(date +%F).csv}
if [ -e "$OUT" ]; then OUT=${OUT%.csv}-$(date +%H%M%S).csv; fi

[ -x ./moebench ] || { echo "build first: IK=... OUT=$OUTDIR $HERE_SRC/build.sh" >&2; exit 1; }

RUN="nice -n $NICE"
LOG=${OUT%.csv}.log

{
  echo "engine,variant,arch,type,T,threads,median_ms,min_ms,gflops_median"
  echo "# ik_llama.cpp $(cat COMMIT_BUILT 2>/dev/null || echo '?'); ggml built Release, GGML_NATIVE=ON, CPU only, OpenMP, static"
  echo "# harness bench/ik/ik_moebench.cpp: ik_llama.cpp llm_build_moe_ffn op sequence, 2 threads via ggml_backend_cpu, ggml_gallocr placement, 16 random inputs cycled; gflops = 2*T*n_used*3*n_embd*n_ff / median"
  echo "# host: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); $(nproc) CPUs; flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|avx512f|avx512_bf16|avx512_vnni|avx_vnni|amx_bf16|amx_int8)$' | tr '\n' ' ')"
  echo "# started $(date -Is); loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg); nice $NICE; TS=$TS VARIANTS=$VARIANTS EXTRA=$EXTRA"
} > "$OUT"

la=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$la" 'BEGIN{exit !(l > 0.3)}'; then
  echo "WARNING: load average $la: something else is running; numbers will not be representative" | tee -a "$LOG" >&2
  echo "# WARNING: load average $la at start" >> "$OUT"
fi

t0=$(date +%s)
if [ "$CHECK" = 1 ]; then
  echo "== correctness check (qwen3moe q8_0, T=7, all variants)" | tee -a "$LOG" >&2
  $RUN ./moebench --arch qwen3moe --type q8_0 --check 7 --threads "$THREADS" 2>>"$LOG" | tee -a "$OUT"
fi
for arch in $ARCHS; do
  for type in $TYPES; do
    echo "== $arch $type ($(date +%T))" | tee -a "$LOG" >&2
    $RUN ./moebench --arch "$arch" --type "$type" --T "$TS" --variants "$VARIANTS" --threads "$THREADS" \
        --probes --no-header $EXTRA 2>>"$LOG" | tee -a "$OUT"
  done
done
echo "# probes at end:" >> "$OUT"
$RUN ./moebench --probes-only --threads "$THREADS" --no-header 2>>"$LOG" | tee -a "$OUT"
echo "# finished $(date -Is); $(( $(date +%s) - t0 )) s; loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT"
echo "wrote $OUT (log $LOG)" >&2
