"""expect_fail.py SECONDS CMD...: CMD must fail, i.e. exit non-zero, and must
do so within SECONDS: a job that hangs (a rank left waiting in a collective)
is a test failure, not an expected failure, which `not timeout N ...` could
not tell apart. Prints CMD's standard output and error, then `exit code N`,
for FileCheck; exits 0 when CMD failed in time, 1 otherwise."""
import os
import signal
import subprocess
import sys

limit, cmd = float(sys.argv[1]), sys.argv[2:]
p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                     start_new_session=True)
try:
    out, _ = p.communicate(timeout=limit)
except subprocess.TimeoutExpired:
    # mpirun ends its ranks on SIGTERM; then anything left in the group.
    os.killpg(p.pid, signal.SIGTERM)
    try:
        out, _ = p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
    sys.stdout.buffer.write(out)
    print(f"expect_fail: HANG: still running after {limit:g} s: {' '.join(cmd)}")
    sys.exit(1)
sys.stdout.buffer.write(out)
print(f"exit code {p.returncode}")
if p.returncode == 0:
    print(f"expect_fail: the command succeeded: {' '.join(cmd)}")
    sys.exit(1)
