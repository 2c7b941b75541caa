#!/bin/bash
# The README's install step for Python (cmake --install build, prefix
# /usr/local), staged under WORK with DESTDIR: the module must land in a
# directory Debian's python3 searches for that prefix, and import from there
# (finding the installed libmoe beside it, not the build tree's).
# Usage: install.sh BUILD_DIR WORK_DIR PYTHON
set -euo pipefail
build=$1 work=$2 python=$3
rm -rf "$work"
DESTDIR="$work" cmake --install "$build" --prefix /usr/local >"$work.log"
mod=$(find "$work/usr/local" -name 'moe.cpython-*.so')
dir=$(dirname "${mod#"$work"}")
"$python" -c 'import sys; d = sys.argv[1]; assert d in sys.path, f"{d} is not on {sys.path}"' "$dir"
cd /
out=$(PYTHONPATH="$work$dir" LD_DEBUG=libs "$python" -c \
  'import moe; print(moe.__file__); print(moe.parse("func @f(%x: tensor<4 x f32>) -> tensor<4 x f32> {\n  return %x\n}").functions)' 2>"$work.ld")
echo "$out"
grep -q "^$work$dir/moe" <<<"$out"
grep -q "\['f'\]" <<<"$out"
grep -q "calling init: $work$dir/../../libmoe.so" "$work.ld"
