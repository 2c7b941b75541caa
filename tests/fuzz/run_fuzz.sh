#!/usr/bin/env bash
# run_fuzz.sh FUZZER SCRATCH [libFuzzer flags...] -- SEED_DIR...
#   Fuzzes from the seed directories (those that exist), writing new inputs to
#   SCRATCH (made fresh), and prints the final stats. Fails on any crash,
#   sanitizer report, timeout or over-limit allocation (libFuzzer's exit code).
# run_fuzz.sh FUZZER --replay DIR
#   Runs every input in DIR once (the regression inputs of fixed findings).
set -euo pipefail
fuzzer=$1
shift
if [[ $1 == --replay ]]; then
  mapfile -t inputs < <(find "$2" -type f | sort)
  ((${#inputs[@]})) || { echo "no inputs in $2"; exit 1; }
  exec "$fuzzer" -timeout=1 -rss_limit_mb=2048 -malloc_limit_mb=2048 "${inputs[@]}"
fi
scratch=$1
shift
flags=()
while (($#)) && [[ $1 != -- ]]; do flags+=("$1"); shift; done
shift || true
seeds=()
for d in "$@"; do [[ -d $d ]] && seeds+=("$d"); done
rm -rf "$scratch" && mkdir -p "$scratch"
# Artifacts (crash-*, timeout-*, oom-*) go next to the scratch corpus.
exec "$fuzzer" "${flags[@]}" -artifact_prefix="$scratch/../$(basename "$scratch")-" \
  "$scratch" "${seeds[@]}"
