"""kill_rank.py [--load] SECONDS RANK SIGNAL CMD...: starts CMD (an mpirun
job whose rank 0 reads the module from a standard input that this script
keeps open, so every rank is waiting: rank 0 in read, the others in
MPI_Bcast), waits until each rank's process is up, kills rank RANK's process
with SIGNAL (a name: KILL, SEGV, TERM, ...), and then requires the whole job
to end with a non-zero exit within SECONDS. Prints CMD's output, `exit code
N` and the seconds the job took to end after the kill, for FileCheck. With
--load, all of it runs on a loaded machine (see load.py)."""
import contextlib
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from load import busy, default_load, end_group  # noqa: E402

args = sys.argv[1:]
load = args[0] == "--load"
if load:
    args = args[1:]
limit, rank, sig, cmd = float(args[0]), int(args[1]), args[2], args[3:]
sig = getattr(signal, "SIG" + sig)


def ranks_of(session):
    """{rank: pid} of the moe-run processes in the job's session."""
    found = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
            # comm is in parentheses; fields after it: state ppid pgrp session
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2:].split()
            if comm != "moe-run" or int(fields[3]) != session:
                continue
            with open(f"/proc/{d}/environ", "rb") as f:
                env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
            r = env.get(b"OMPI_COMM_WORLD_RANK")
            if r is not None:
                found[int(r)] = int(d)
        except (OSError, ValueError):
            continue
    return found



with busy(default_load()) if load else contextlib.nullcontext():
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    pids = {}
    while rank not in pids or len(pids) < 2:
        if time.monotonic() > deadline or p.poll() is not None:
            sys.stdout.buffer.write(end_group(p) if p.poll() is None else p.communicate()[0])
            print("kill_rank: the ranks did not start")
            sys.exit(1)
        time.sleep(0.05)
        pids = ranks_of(p.pid)
    time.sleep(0.5)  # let the others reach their wait
    os.kill(pids[rank], sig)
    t0 = time.monotonic()
    try:
        out, _ = p.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        sys.stdout.buffer.write(end_group(p))
        print(f"kill_rank: HANG: still running {limit:g} s after rank {rank} was killed")
        sys.exit(1)
    took = time.monotonic() - t0
sys.stdout.buffer.write(out)
print(f"exit code {p.returncode}")
print(f"ended {took:.1f} s after the kill")
if p.returncode == 0:
    print("kill_rank: the job succeeded")
    sys.exit(1)
