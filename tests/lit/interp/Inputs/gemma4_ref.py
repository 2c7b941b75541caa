#!/usr/bin/env python3
"""NumPy reference check of the tiny Gemma-4 MoE layer (examples/gemma4_tiny.moe).

Usage: gemma4_ref.py FILE.moe WORKDIR

Creates WORKDIR (a directory; replaced if it exists), writes deterministic
random inputs and params there as float32 .npy files, runs

    moe-run FILE --sym T=7 --input x=... --input logits=...
            --param gate_up_exps=... ... --output OUT

and compares OUT/result0.npy with the layer re-implemented below in NumPy
(float64) from the layer description in DESIGN.md ("The three real layers",
gemma4, and the op semantics table) -- not from any C++ code of the project:
router logits given as an input, softmax, top-k, gather, normalise to sum 1,
per expert the pre-merged gate_up weight [E, 2*n_ff, n_embd] whose rows
0..n_ff-1 are the gate and rows n_ff..2*n_ff-1 the up projection, geglu with
the tanh gelu, down projection, multiplied by the expert's down scale
down_exps_s[e] and by the routing weight, summed over the k experts.

moe-run is taken from $MOE_RUN if set, else from PATH. Exits non-zero with a
message on any failure. `--sym T=7` is passed only if FILE declares a `where T`
clause.
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import refcommon  # noqa: E402
from refcommon import softmax, topk  # noqa: E402

NAME = "gemma4_ref"
T = 7            # token count
N_EMBD = 64      # hidden size
N_FF = 64        # expert intermediate size
N_EXPERT = 8     # experts
K = 2            # experts used per token
TOL = 1e-5       # bound on the norm-wise relative errors
TIE_GAP = 1e-4   # minimal gap between the k-th and (k+1)-th routing score
BASE_SEED = 20240923

INPUTS = ["x", "logits"]
PARAMS = ["gate_up_exps", "down_exps", "down_exps_s"]


# --- the layer, in NumPy ----------------------------------------------------

def gelu_tanh(v):
    return 0.5 * v * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (v + 0.044715 * v ** 3)))


def reference(x, logits, gate_up_exps, down_exps, down_exps_s):
    f = lambda a: a.astype(np.float64)
    x, logits = f(x), f(logits)
    gate_up_exps, down_exps, down_exps_s = f(gate_up_exps), f(down_exps), f(down_exps_s)

    probs = softmax(logits, axis=-1)                     # [T, E]
    ids = topk(probs, K)                                 # [T, k]
    w = np.take_along_axis(probs, ids, axis=1)           # [T, k]
    wn = w / np.sum(w, axis=1, keepdims=True)            # normalised

    out = np.zeros((x.shape[0], N_EMBD))
    for t in range(x.shape[0]):
        for j in range(K):
            e = ids[t, j]
            gate = gate_up_exps[e, :N_FF] @ x[t]         # gate rows first
            up = gate_up_exps[e, N_FF:] @ x[t]           # then up rows
            act = gelu_tanh(gate) * up                   # geglu
            down = down_exps[e] @ act                    # [n_embd]
            out[t] += wn[t, j] * (down_exps_s[e] * down)
    return out, probs


# --- data -------------------------------------------------------------------

def make_data(seed):
    rng = np.random.default_rng(seed)
    s = 1.0 / np.sqrt(N_EMBD)
    data = {
        "x": rng.standard_normal((T, N_EMBD)),
        "logits": 1.5 * rng.standard_normal((T, N_EXPERT)),
        # gate and up pre-activations with std ~1.5
        "gate_up_exps": 1.5 * s * rng.standard_normal((N_EXPERT, 2 * N_FF, N_EMBD)),
        "down_exps": (1.0 / np.sqrt(N_FF)) * rng.standard_normal((N_EXPERT, N_EMBD, N_FF)),
        "down_exps_s": rng.uniform(0.5, 1.5, (N_EXPERT,)),
    }
    return {k: v.astype(np.float32) for k, v in data.items()}


if __name__ == "__main__":
    refcommon.main(sys.modules[__name__])
