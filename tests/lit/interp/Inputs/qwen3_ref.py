#!/usr/bin/env python3
"""NumPy reference check of the tiny Qwen3-MoE layer (examples/qwen3_tiny.moe).

Usage: qwen3_ref.py FILE.moe WORKDIR

Creates WORKDIR (a directory; replaced if it exists), writes deterministic
random inputs and params there as float32 .npy files, runs

    moe-run FILE --sym T=7 --input x=... --param gate_inp=... ... --output OUT

and compares OUT/result0.npy with the layer re-implemented below in NumPy
(float64) from the layer description in DESIGN.md ("The three real layers",
qwen3moe, and the op semantics table) -- not from any C++ code of the project.

moe-run is taken from $MOE_RUN if set, else from PATH. Exits non-zero with a
message on any failure. `--sym T=7` is passed only if FILE declares a `where T`
clause, so the statically captured examples/qwen3_t7.moe can be checked too.
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import refcommon  # noqa: E402
from refcommon import softmax, topk  # noqa: E402

NAME = "qwen3_ref"
T = 7            # token count
N_EMBD = 64      # hidden size
N_FF = 64        # expert intermediate size
N_EXPERT = 8     # experts
K = 2            # experts used per token
CLAMP_MIN = 6.1e-5
TOL = 1e-5       # bound on the norm-wise relative errors
TIE_GAP = 1e-4   # minimal gap between the k-th and (k+1)-th routing score
BASE_SEED = 20240607

INPUTS = ["x"]
PARAMS = ["gate_inp", "up_exps", "gate_exps", "down_exps"]


# --- the layer, in NumPy ----------------------------------------------------

def silu(v):
    return v / (1.0 + np.exp(-v))


def reference(x, gate_inp, up_exps, gate_exps, down_exps):
    x = x.astype(np.float64)
    gate_inp = gate_inp.astype(np.float64)
    up_exps = up_exps.astype(np.float64)
    gate_exps = gate_exps.astype(np.float64)
    down_exps = down_exps.astype(np.float64)

    logits = x @ gate_inp.T                              # [T, E]
    probs = softmax(logits, axis=-1)                     # [T, E]
    ids = topk(probs, K)                                 # [T, k]
    w = np.take_along_axis(probs, ids, axis=1)           # [T, k]
    wsum = np.maximum(np.sum(w, axis=1, keepdims=True), CLAMP_MIN)
    wn = w / wsum                                        # [T, k]

    out = np.zeros((x.shape[0], N_EMBD))
    for t in range(x.shape[0]):
        for j in range(K):
            e = ids[t, j]
            up = up_exps[e] @ x[t]                       # [n_ff]
            gate = gate_exps[e] @ x[t]                   # [n_ff]
            act = silu(gate) * up                        # swiglu
            down = down_exps[e] @ act                    # [n_embd]
            out[t] += wn[t, j] * down
    return out, probs


# --- data -------------------------------------------------------------------

def make_data(seed):
    rng = np.random.default_rng(seed)
    s = 1.0 / np.sqrt(N_EMBD)
    data = {
        "x": rng.standard_normal((T, N_EMBD)),
        # logits with std ~1.5: a clear but not degenerate routing
        "gate_inp": 1.5 * s * rng.standard_normal((N_EXPERT, N_EMBD)),
        # pre-activations with std ~1, down output O(1)
        "up_exps": s * rng.standard_normal((N_EXPERT, N_FF, N_EMBD)),
        "gate_exps": s * rng.standard_normal((N_EXPERT, N_FF, N_EMBD)),
        "down_exps": (1.0 / np.sqrt(N_FF)) * rng.standard_normal((N_EXPERT, N_EMBD, N_FF)),
    }
    return {k: v.astype(np.float32) for k, v in data.items()}


if __name__ == "__main__":
    refcommon.main(sys.modules[__name__])
