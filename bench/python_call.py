#!/usr/bin/env python3
"""What a Python call of a real-size layer costs beside the C++ call.

Usage: PYTHONPATH=build/python /usr/bin/python3 bench/python_call.py
           [--layer examples/qwen3.moe] [--tokens 128,1] [--repeat 20] [--threads 0]

Compiles the layer after the `default` pipeline (examples/qwen3.moe: the
Qwen3-30B-A3B FFN, q8_0 experts), binds moe-run's seeded weights, then for
each T times the same run two ways, in alternating rounds so that a busy
machine slows both alike:

  python  `exe(x=x, T=T)` from Python: keywords parsed, the array checked
          and viewed, the GIL released, the result handed to NumPy;
  c++     `Executable::run` called in a C++ loop (exe.time_native), what
          an embedder of include/moe/Moe.h pays.

Prints the medians and python/c++ - 1 per T (docs/Python.md keeps the figures).
"""
import argparse
import pathlib
import statistics
import sys
import time

import numpy as np

import moe


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = pathlib.Path(__file__).resolve().parents[1]
    ap.add_argument("--layer", default=str(root / "examples" / "qwen3.moe"))
    ap.add_argument("--pipeline", default="default")
    ap.add_argument("--tokens", default="128,1")
    ap.add_argument("--repeat", type=int, default=20, help="runs per round and way")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()

    m = moe.parse_file(a.layer)
    m.run_pipeline(a.pipeline)
    fn = m.functions[0]
    t0 = time.perf_counter()
    exe = moe.compile(m, fn, threads=a.threads)
    t1 = time.perf_counter()
    exe.bind_random(1)
    t2 = time.perf_counter()
    print(f"{pathlib.Path(a.layer).name} @{fn} -p {a.pipeline}: compile {1e3 * (t1 - t0):.0f} ms"
          f" ({'cache' if exe.from_cache else 'cold'}), bind_random {t2 - t1:.1f} s")
    name = exe.inputs[0]
    for T in (int(t) for t in a.tokens.split(",")):
        x = np.random.default_rng(T).standard_normal(exe.shape(name, T=T)).astype(np.float32)
        exe(**{name: x}, T=T)  # warm: repacked weights, arenas
        py, cc = [], []
        for _ in range(a.rounds):
            for _ in range(a.repeat):
                s = time.perf_counter()
                exe(**{name: x}, T=T)
                py.append(1e3 * (time.perf_counter() - s))
            cc += exe.time_native(a.repeat, **{name: x}, T=T)
        p, c = statistics.median(py), statistics.median(cc)
        print(f"T={T:<4} python {p:8.3f} ms  c++ {c:8.3f} ms  python/c++ - 1 = {100 * (p / c - 1):+.2f}%"
              f"  (min {min(py):.3f} / {min(cc):.3f} ms, {len(py)} runs each)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
