"""A busy machine for the MPI fault tests: `with busy(n):` keeps n processes
spinning on the CPU (2 x the cores by default), so a job's ranks compete
for time as on a loaded machine."""
import contextlib
import multiprocessing
import os


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
