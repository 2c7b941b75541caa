"""bytes_not_grown.py FILE PIPELINE [FILE PIPELINE ...]: runs `moe-opt FILE
--split-input-file -p PIPELINE --pass-statistics` for each pair and checks
that every delay-allreduce report has bytes-per-token-after <=
bytes-per-token-before. Prints one line per report; exits non-zero on a
report that grew, on a run that fails, or on a run without a report."""
import os
import re
import subprocess
import sys

args = sys.argv[1:]
if not args or len(args) % 2:
    sys.exit("usage: bytes_not_grown.py FILE PIPELINE [FILE PIPELINE ...]")
block = re.compile(r"^delay-allreduce\n(?:  \(.*\n)*", re.M)
stat = re.compile(r"\((-?\d+)\) (bytes-per-token-before|bytes-per-token-after)")
grew = 0
for path, pipeline in zip(args[0::2], args[1::2]):
    run = subprocess.run(["moe-opt", path, "--split-input-file", "-p", pipeline,
                          "--pass-statistics", "-o", os.devnull],
                         capture_output=True, text=True)
    if run.returncode:
        sys.exit(f"moe-opt {path} -p '{pipeline}' failed:\n{run.stderr}")
    reports = block.findall(run.stderr)
    if not reports:
        sys.exit(f"moe-opt {path} -p '{pipeline}': no delay-allreduce statistics")
    for r in reports:
        v = {k: int(n) for n, k in stat.findall(r)}
        before, after = v["bytes-per-token-before"], v["bytes-per-token-after"]
        verdict = "GREW" if after > before else "ok"
        grew += after > before
        print(f"{os.path.basename(path)} '{pipeline}': {before} -> {after} {verdict}")
if grew:
    sys.exit(f"{grew} delay-allreduce report(s) with more bytes per token after than before")
