#!/bin/bash
# Usage: same-keys.sh REFERENCE_TOOLS_DIR TOOLS_DIR SOURCE_ROOT
#
# The JIT object cache is shared between the Release tree (GCC) and the
# sanitized tree (clang): its key is the kernels' LLVM IR and the target,
# so both trees must lower every program to the same IR, instruction for
# instruction. A call with two arguments that each emit instructions breaks
# that silently (C++ leaves their order to the compiler; GCC and clang
# differ): the sanitized suite then compiles those programs again, and the
# object cache stops being shared with anyone running another build.
# Compiles each program below with both trees' moe-run, each into an empty
# cache directory, and fails naming every program whose cache entries
# differ. Exit 77 (skipped) when the reference tools are missing.
set -u -o pipefail
ref=$1 own=$2 src=$3
[ -x "$ref/moe-run" ] || { echo "same-keys: no $ref/moe-run: skipped"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
split='-p default,tp-split{ranks=2},delay-allreduce --ranks 2'
specs=(
  "examples/qwen3_tiny.moe -p default"
  "examples/qwen3_tiny.moe -p default --weight-type=q8_0"
  "examples/qwen3_tiny.moe -p default --weight-type=q4_0"
  "examples/qwen3_tiny.moe -p default --weight-type=bf16"
  "examples/qwen3_tiny.moe -p default --weight-type=f16 --cpu=x86-64-v3"
  "examples/qwen3_tiny.moe -p default --weight-type=q8_0 --cpu=x86-64"
  "examples/gptoss_tiny.moe -p default --weight-type=mxfp4"
  "examples/gemma4_tiny.moe $split --weight-type=q4_0"
  "examples/qwen3_tiny.moe $split --weight-type=q4_0 --cpu=x86-64-v3"
  "examples/qwen3_tiny.moe $split --weight-type=q8_0"
  "examples/gptoss_tiny.moe $split"
)
failed=0
for i in "${!specs[@]}"; do
  read -r -a args <<< "${specs[$i]}"
  args[0]=$src/${args[0]}
  for tree in ref own; do
    dir=${!tree}
    mkdir -p "$work/$tree-$i"
    if ! "$dir/moe-run" "${args[@]}" --sym T=3 --cache-dir "$work/$tree-$i" > "$work/$tree-$i.log" 2>&1; then
      echo "same-keys: $dir/moe-run ${specs[$i]} failed:"; cat "$work/$tree-$i.log"; failed=1
    fi
  done
  a=$(cd "$work/ref-$i" && ls) b=$(cd "$work/own-$i" && ls)
  if [ -z "$a" ] || [ "$a" != "$b" ]; then
    echo "same-keys: DIFFERENT: ${specs[$i]}: reference [$a], this tree [$b]"; failed=1
  else
    echo "same-keys: same: ${specs[$i]}"
  fi
done
exit $failed
