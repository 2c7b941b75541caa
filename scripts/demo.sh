#!/usr/bin/env bash
# Sets up, builds and runs the demo: parse the real-size Qwen3-30B-A3B MoE
# layer, run the default pipeline with statistics and print the optimised IR;
# split it over 2 ranks and delay the all_reduce (statistics show the bytes
# reduced per token drop by n_expert_used); then JIT-compile and run the tiny
# layer on 1 rank and on 2 in-process ranks, checked against the reference
# interpreter; write a tiny Gemma-4 GGUF model with q8_0 experts, import its
# block 1 and run it with the file's own weights (mapped, not copied) on 2
# ranks, checked against the interpreter; and the real-size layer at T = 1,
# timed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
B=${BUILD_DIR:-build}/tools
run() { echo; echo "== $*"; "$@"; }
run "$B/moe-opt" examples/qwen3.moe -p default --pass-statistics
run "$B/moe-opt" examples/qwen3.moe -p 'default,tp-split{ranks=2},delay-allreduce' \
    --pass-statistics -o /dev/null
run "$B/moe-run" examples/qwen3_tiny.moe -p default --sym T=7 --seed 1 --check --time
run "$B/moe-run" examples/qwen3_tiny.moe -p 'default,tp-split{ranks=2},delay-allreduce' \
    --ranks 2 --sym T=7 --seed 1 --check
# A GGUF model's layer: gemma4 (dense MLP beside the experts, merged gate_up).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run "$B/moe-gguf" tiny gemma4 --type q8_0 --merged-gate-up -o "$tmp/gemma4-tiny.gguf"
echo; echo "== $B/moe-import $tmp/gemma4-tiny.gguf --layer 1 | $B/moe-run - --weights ... --ranks 2"
"$B/moe-import" "$tmp/gemma4-tiny.gguf" --layer 1 |
  "$B/moe-run" - -p 'default,tp-split{ranks=2},delay-allreduce' --ranks 2 \
    --weights "$tmp/gemma4-tiny.gguf" --sym T=7 --check --time
# The real-size layer, JIT-compiled, q8_0 experts (generating and quantising
# the random weights takes a while; the run itself is timed alone).
run "$B/moe-run" examples/qwen3.moe -p default --sym T=1 --weight-type=q8_0 --time --repeat 10
