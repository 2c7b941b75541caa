"""compare.py A.npy B.npy [--rtol R]: A equals B within f32 reassociation
tolerance, max |a - b| / max |b| <= R (default 1e-5), with the same shape and
dtype. Prints the ratio; exits non-zero (with the reason) otherwise."""
import sys

import numpy as np

args = sys.argv[1:]
rtol = 1e-5
if "--rtol" in args:
    i = args.index("--rtol")
    rtol = float(args[i + 1])
    del args[i:i + 2]
a, b = (np.load(p) for p in args)
if a.shape != b.shape or a.dtype != b.dtype:
    sys.exit(f"compare: {args[0]} is {a.dtype}{list(a.shape)}, {args[1]} is {b.dtype}{list(b.shape)}")
if not (np.isfinite(a).all() and np.isfinite(b).all()):
    sys.exit("compare: non-finite values")
scale = float(np.max(np.abs(b.astype(np.float64))))
diff = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)), initial=0.0))
ratio = diff / scale if scale > 0 else diff
print(f"max|a-b|/max|b| = {ratio:.3g}")
if not ratio <= rtol:
    sys.exit(f"compare: {args[0]} and {args[1]} differ: max|a-b|/max|b| = {ratio:.3g} > {rtol:g}")
