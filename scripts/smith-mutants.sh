#!/usr/bin/env bash
# Shows that moe-smith finds the two legality mutants of issue #15: each
# mutant is applied by replacing one unique snippet of a pass's source, the
# tools are rebuilt incrementally, moe-smith checks a batch of programs and
# reduces what fails, and the source is restored (also on error or ^C, by a
# trap), then rebuilt. Prints, per mutant, whether moe-smith found it and the
# reduced reproducer it wrote. Not part of ctest (it rebuilds).
#
#   scripts/smith-mutants.sh            (BUILD=build SEED=1 COUNT=240 JOBS=2)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build}
seed=${SEED:-1}
count=${COUNT:-240}
jobs=${JOBS:-2}
# The ctest batch's flags (tests/CMakeLists.txt), so a mutant is found by
# the batch as it runs, and nothing else fails.
flags=${SMITH_FLAGS:---jit-every 6}
out=${OUT:-$(mktemp -d /tmp/smith-mutants.XXXXXX)}
mkdir -p "$out"
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-/work}
lit=${LIT:-/usr/lib/llvm-19/build/utils/lit/lit.py}

# Each mutant: name, file, snippet (must occur once), replacement.
mutants=(
  delay-allreduce-rank-local passes/DelayAllReduce.cpp
  "} else if (downstream.count(v) || local.count(v)) {"
  "} else if (downstream.count(v)) {"

  rms-fusion-scaled-mean passes/RmsFusion.cpp
  "    if (!near(m.a, 1.0))"
  "    if (false && !near(m.a, 1.0))"
)

backup=""
target=""
restore() {
  if [[ -n "$backup" ]]; then
    cp "$backup" "$root/$target"
    rm -f "$backup"
    backup=""
  fi
}
trap 'restore' EXIT INT TERM

rebuild() {
  cmake --build "$build" -j2 --target moe-smith moe-opt moe-run > "$out/build.log" 2>&1 ||
    { tail -30 "$out/build.log"; exit 1; }
}

# Replaces the snippet, which must occur exactly once.
apply() {
  python3 - "$root/$1" "$2" "$3" <<'EOF'
import sys
path, old, new = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(path).read()
n = text.count(old)
if n != 1:
    sys.exit(f"{path}: the mutant's snippet occurs {n} times (expected once): {old!r}")
open(path, "w").write(text.replace(old, new))
EOF
}

status=0
summary=()
for ((i = 0; i < ${#mutants[@]}; i += 4)); do
  name=${mutants[i]} file=${mutants[i+1]} old=${mutants[i+2]} new=${mutants[i+3]}
  echo "== mutant $name ($file)"
  target=$file
  backup=$(mktemp)
  cp "$root/$file" "$backup"
  apply "$file" "$old" "$new"
  rebuild
  set +e
  "$build/tools/moe-smith" check --seed "$seed" --count "$count" --jobs "$jobs" \
      $flags --reduce-time 120 --out "$out/$name" | tee "$out/$name.log"
  rc=${PIPESTATUS[0]}
  # The reduced reproducers kept in tests/lit/smith must bite too.
  python3 "$lit" -q "$build/tests/lit/smith" > "$out/$name.lit.log" 2>&1
  lit_failed=$(grep -o "smith/[a-z0-9-]*\.moe" "$out/$name.lit.log" | sort -u | tr '\n' ' ')
  set -e
  restore
  if [[ $rc -ne 0 ]]; then
    summary+=("$name: FOUND ($(grep -c '^FAIL' "$out/$name.log") failing programs; lit tests failing: ${lit_failed:-none})")
    for f in "$out/$name"/*.moe; do
      [[ $f == *.orig.moe ]] && continue
      echo "---- reduced reproducer $f"
      cat "$f"
    done
  else
    summary+=("$name: SURVIVED")
    status=1
  fi
done
echo "== restoring and rebuilding"
rebuild
echo "== summary (outputs in $out)"
printf '%s\n' "${summary[@]}"
exit $status
