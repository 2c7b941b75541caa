#!/usr/bin/env python3
"""NumPy reference check of the tiny gpt-oss MoE layer (examples/gptoss_tiny.moe).

Usage: gptoss_ref.py FILE.moe WORKDIR

Creates WORKDIR (a directory; replaced if it exists), writes deterministic
random inputs and params there as float32 .npy files, runs

    moe-run FILE --sym T=7 --input x=... --param gate_inp=... ... --output OUT

and compares OUT/result0.npy with the layer re-implemented below in NumPy
(float64) from the layer description in DESIGN.md ("The three real layers",
gpt-oss, and the op semantics table) -- not from any C++ code of the project:
router matmul + bias, top-k on the raw logits, softmax over the k selected
logits (no renormalisation), up/gate/down matmuls each followed by the
selected expert's bias, swiglu_oai {alpha = 1.702, limit = 7.0}, weighting by
the routing weights and sum over the k experts. The data are scaled so that
the swiglu_oai limit is hit by some gate and up values.

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
from refcommon import sigmoid, softmax, topk  # noqa: E402

NAME = "gptoss_ref"
T = 7            # token count
N_EMBD = 64      # hidden size
N_FF = 64        # expert intermediate size
N_EXPERT = 4     # experts
K = 2            # experts used per token
ALPHA = 1.702    # swiglu_oai
LIMIT = 7.0      # swiglu_oai
TOL = 1e-5       # bound on the norm-wise relative errors
TIE_GAP = 1e-4   # minimal gap between the k-th and (k+1)-th routing score
BASE_SEED = 20240811

INPUTS = ["x"]
PARAMS = ["gate_inp", "gate_inp_b", "up_exps", "up_exps_b", "gate_exps",
          "gate_exps_b", "down_exps", "down_exps_b"]


# --- the layer, in NumPy ----------------------------------------------------

def swiglu_oai(g, u):
    gc = np.minimum(g, LIMIT)
    uc = np.clip(u, -LIMIT, LIMIT)
    return gc * sigmoid(ALPHA * gc) * (uc + 1.0)


STATS = {}


def reference(x, gate_inp, gate_inp_b, up_exps, up_exps_b, gate_exps,
              gate_exps_b, down_exps, down_exps_b):
    f = lambda a: a.astype(np.float64)
    x, gate_inp, gate_inp_b = f(x), f(gate_inp), f(gate_inp_b)
    up_exps, up_exps_b = f(up_exps), f(up_exps_b)
    gate_exps, gate_exps_b = f(gate_exps), f(gate_exps_b)
    down_exps, down_exps_b = f(down_exps), f(down_exps_b)

    logits = x @ gate_inp.T + gate_inp_b                 # [T, E]
    ids = topk(logits, K)                                # [T, k], raw logits
    wl = np.take_along_axis(logits, ids, axis=1)         # [T, k]
    w = softmax(wl, axis=-1)                             # over the k selected

    out = np.zeros((x.shape[0], N_EMBD))
    n_gate_clamped = n_up_clamped = 0
    for t in range(x.shape[0]):
        for j in range(K):
            e = ids[t, j]
            up = up_exps[e] @ x[t] + up_exps_b[e]        # [n_ff]
            gate = gate_exps[e] @ x[t] + gate_exps_b[e]  # [n_ff]
            n_gate_clamped += int(np.sum(gate > LIMIT))
            n_up_clamped += int(np.sum(np.abs(up) > LIMIT))
            act = swiglu_oai(gate, up)
            down = down_exps[e] @ act + down_exps_b[e]   # [n_embd]
            out[t] += w[t, j] * down
    STATS["gate_clamped"] = n_gate_clamped
    STATS["up_clamped"] = n_up_clamped
    return out, logits


# --- data -------------------------------------------------------------------

def make_data(seed):
    rng = np.random.default_rng(seed)
    s = 1.0 / np.sqrt(N_EMBD)
    data = {
        "x": rng.standard_normal((T, N_EMBD)),
        "gate_inp": 1.5 * s * rng.standard_normal((N_EXPERT, N_EMBD)),
        "gate_inp_b": 0.5 * rng.standard_normal((N_EXPERT,)),
        # gate/up pre-activations with std ~4, so that some pass the limit 7
        "up_exps": 4.0 * s * rng.standard_normal((N_EXPERT, N_FF, N_EMBD)),
        "up_exps_b": 0.5 * rng.standard_normal((N_EXPERT, N_FF)),
        "gate_exps": 4.0 * s * rng.standard_normal((N_EXPERT, N_FF, N_EMBD)),
        "gate_exps_b": 0.5 * rng.standard_normal((N_EXPERT, N_FF)),
        # act is O(10) where it is large: keep the output O(1..10)
        "down_exps": (0.25 / np.sqrt(N_FF)) * rng.standard_normal((N_EXPERT, N_EMBD, N_FF)),
        "down_exps_b": 0.5 * rng.standard_normal((N_EXPERT, N_EMBD)),
    }
    return {k: v.astype(np.float32) for k, v in data.items()}


# --- hooks for refcommon ----------------------------------------------------

NO_DATA_MSG = "could not generate suitable test data"


def accept(data, ref, scores):
    """Besides having no near-tie in the top-k, the data must drive some gate
    and some up values past the swiglu_oai limit (STATS: the last reference())."""
    return STATS["gate_clamped"] > 0 and STATS["up_clamped"] > 0


def summary():
    return (f"{STATS['gate_clamped']} gate / {STATS['up_clamped']} up values past "
            f"the limit {LIMIT}")


if __name__ == "__main__":
    refcommon.main(sys.modules[__name__])
