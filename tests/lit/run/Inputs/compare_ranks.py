"""Compares the .npy results of split runs with the 1-rank run.

Usage: compare_ranks.py REF.npy GOT.npy [GOT.npy ...]

Each GOT must have REF's shape and dtype and differ from it by at most
RTOL = 1e-5 relative (max |got - ref| / max |ref|): the ranks only reassociate
f32 sums. Prints one line per file and exits non-zero on the first mismatch.
"""
import os
import sys

import numpy as np

RTOL = 1e-5

ref_path, got_paths = sys.argv[1], sys.argv[2:]
if not got_paths:
    sys.exit("usage: compare_ranks.py REF.npy GOT.npy [GOT.npy ...]")
ref = np.load(ref_path)
scale = max(float(np.abs(ref).max()), 1e-30)
if not np.all(np.isfinite(ref)):
    sys.exit(f"{ref_path}: the reference has non-finite values")
for path in got_paths:
    got = np.load(path)
    name = os.path.basename(os.path.dirname(path)) or path
    if got.shape != ref.shape or got.dtype != ref.dtype:
        sys.exit(f"{name}: shape {got.shape} {got.dtype}, expected {ref.shape} {ref.dtype}")
    rel = float(np.abs(got.astype(np.float64) - ref.astype(np.float64)).max()) / scale
    if not rel <= RTOL:
        sys.exit(f"{name}: max rel diff {rel:.3g} > {RTOL:g}")
    print(f"{name}: matches 1 rank (shape {list(got.shape)}, rel diff <= {RTOL:g})")
