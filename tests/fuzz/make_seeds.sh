#!/usr/bin/env bash
# make_seeds.sh BUILD_DIR OUT: the generated seed corpora of the fuzz targets.
#   OUT/gguf: a tiny model of every architecture in every weight type, and
#             one with a pre-merged ffn_gate_up_exps, from `moe-gguf tiny`;
#   OUT/moe:  the examples through `moe-import`-style text, i.e. the imported
#             layers of those models (real names, every arch's graph shape).
set -euo pipefail
build=$1 out=$2
rm -rf "$out" && mkdir -p "$out/gguf" "$out/moe"
gguf=$build/tools/moe-gguf import=$build/tools/moe-import
for arch in qwen3moe qwen2moe gpt-oss llama gemma4 qwen35moe; do
  for type in f32 f16 bf16 q8_0 q4_0 mxfp4; do
    f=$out/gguf/$arch-$type.gguf
    "$gguf" tiny "$arch" --type "$type" --blocks 1 --experts 4 --top-k 2 --n-embd 32 \
      --n-ff 32 -o "$f" >/dev/null
    "$import" "$f" --all -o "$out/moe/$arch-$type.moe" >/dev/null
  done
  "$gguf" tiny "$arch" --merged-gate-up --type q8_0 --blocks 1 --experts 4 --top-k 2 \
    --n-embd 32 --n-ff 32 -o "$out/gguf/$arch-merged.gguf" >/dev/null
done
echo "seeds: $(ls "$out/gguf" | wc -l) GGUF models, $(ls "$out/moe" | wc -l) imported layers in $out"
