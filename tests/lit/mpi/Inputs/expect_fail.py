"""expect_fail.py [--load] SECONDS CMD...: CMD must fail, i.e. exit non-zero,
and must do so within SECONDS: a job that hangs (a rank left waiting in a
collective) is a test failure, not an expected failure, which `not timeout N
...` could not tell apart. Prints CMD's standard output and error, then `exit
code N`, for FileCheck; exits 0 when CMD failed in time, 1 otherwise. With
--load, CMD runs while twice as many busy processes as cores compete for the
CPU (a loaded machine)."""
import contextlib
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from load import busy, default_load, end_group  # noqa: E402

args = sys.argv[1:]
load = args[0] == "--load"
if load:
    args = args[1:]
limit, cmd = float(args[0]), args[1:]



with busy(default_load()) if load else contextlib.nullcontext():
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         start_new_session=True)
    try:
        out, _ = p.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        sys.stdout.buffer.write(end_group(p))
        print(f"expect_fail: HANG: still running after {limit:g} s: {' '.join(cmd)}")
        sys.exit(1)
sys.stdout.buffer.write(out)
print(f"exit code {p.returncode}")
if p.returncode == 0:
    print(f"expect_fail: the command succeeded: {' '.join(cmd)}")
    sys.exit(1)
