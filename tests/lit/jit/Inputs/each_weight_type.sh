#!/bin/bash
# moe-run --check on each tiny example under each weight type; extra args
# are passed to every run. Stops at the first failure.
set -e
examples=$1; shift
for ex in qwen3_tiny gptoss_tiny gemma4_tiny; do
  for wt in f32 f16 bf16 q8_0 q4_0 mxfp4; do
    echo "== $ex $wt"
    moe-run "$examples/$ex.moe" --weight-type=$wt --check "$@"
  done
done
