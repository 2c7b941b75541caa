"""Shared by the MPI fault tests' drivers: a busy machine (`with busy(n):`
keeps n processes spinning on the CPU, 2 x the cores by default, so a job's
ranks compete for time as on a loaded machine) and ending a job's process
group."""
import contextlib
import multiprocessing
import os
import signal
import subprocess


def _spin():
    while True:
        pass


@contextlib.contextmanager
def busy(n):
    procs = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(n)]
    for p in procs:
        p.start()
    try:
        yield
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.join()


def default_load():
    return 2 * (os.cpu_count() or 2)


def end_group(p):
    """Ends the job started as `p` (its own session): SIGTERM, which mpirun
    answers by ending its ranks, then SIGKILL for anything left. Returns the
    job's output."""
    os.killpg(p.pid, signal.SIGTERM)
    try:
        return p.communicate(timeout=10)[0]
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        return p.communicate()[0]
