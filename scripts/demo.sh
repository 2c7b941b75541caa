#!/usr/bin/env bash
# Sets up, builds and runs the demo: parse the real-size Qwen3-30B-A3B MoE
# layer, run the default pipeline with statistics, print the optimised IR,
# then run the tiny layer in the reference interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
B=${BUILD_DIR:-build}/tools
echo "== moe-opt examples/qwen3.moe -p default --pass-statistics"
"$B/moe-opt" examples/qwen3.moe -p default --pass-statistics
if [[ -x "$B/moe-run" ]] && "$B/moe-run" --help >/dev/null 2>&1; then
  echo
  echo "== moe-run examples/qwen3_tiny.moe -p default --sym T=7 --seed 1"
  "$B/moe-run" examples/qwen3_tiny.moe -p default --sym T=7 --seed 1
fi
