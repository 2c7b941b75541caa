"""Checks the table `moe-run --profile` prints (standard input), without
asserting any time: the columns, rows sorted by total ms, the percentages
summing to 100, a rate on exactly the matmul/matmul_id rows, and the calls
of each row (--calls for kernels that run every run, --pack-calls for the
weight repacking that runs once per binding). Prints one line per kernel
label, in the table's order, for FileCheck."""
import argparse
import re
import sys

ap = argparse.ArgumentParser()
ap.add_argument("--calls", type=int, required=True)
ap.add_argument("--pack-calls", type=int, default=None)
ap.add_argument("--runs", type=int, required=True, help="runs x ranks")
a = ap.parse_args()

lines = sys.stdin.read().splitlines()
start = next(i for i, l in enumerate(lines) if l.startswith("profile: "))
head = lines[start + 1].split()
want = ["%run", "total", "ms", "calls", "ms/call", "GFLOP/s", "GB/s", "kernel", "[symbol]"]
if head != want:
    sys.exit(f"bad header {head}")
row = re.compile(r"^ *(\d+\.\d\d)% +(\d+\.\d{3}) +(\d+) +(\d+\.\d{4})? +(-|\d+\.\d\d)? +(-|\d+\.\d\d)?  (.*)$")
kernels, outside, total = [], None, None
for l in lines[start + 2:]:
    m = row.match(l)
    if not m:
        break
    pct, ms, calls, per, gf, gb, label = m.groups()
    r = dict(pct=float(pct), ms=float(ms), calls=int(calls), gf=gf, gb=gb, label=label)
    if label.startswith("(outside kernels"):
        outside = r
    elif label == "run":
        total = r
        break
    else:
        kernels.append(r)
if not kernels or outside is None or total is None:
    sys.exit("missing kernel, outside or run rows")
if total["calls"] != a.runs or outside["calls"] != a.runs:
    sys.exit(f"run rows count {total['calls']} runs, expected {a.runs}")
ms = [k["ms"] for k in kernels]
if ms != sorted(ms, reverse=True):
    sys.exit(f"rows not sorted by total ms: {ms}")
pct = sum(k["pct"] for k in kernels) + outside["pct"]
if abs(pct - 100) > 0.01 * (len(kernels) + 1) + 0.01:
    sys.exit(f"percentages sum to {pct}")
for k in kernels:
    name = k["label"].split(" [")[0]
    is_mm = re.match(r"^matmul(_id)? %\w+$", name) is not None
    if is_mm != (k["gf"] not in (None, "-")) or is_mm != (k["gb"] not in (None, "-")):
        sys.exit(f"rate columns of '{k['label']}': {k['gf']} {k['gb']}")
    want_calls = a.pack_calls if name.startswith("packed(") else a.calls
    if want_calls is not None and k["calls"] != want_calls:
        sys.exit(f"'{k['label']}' has {k['calls']} calls, expected {want_calls}")
    print("kernel:", k["label"])
print(f"profile ok: {len(kernels)} kernels")
