"""Shared part of the NumPy reference checks of the tiny layers
(qwen3_ref.py, gptoss_ref.py, gemma4_ref.py).

A layer script defines its constants and its math and ends with

    if __name__ == "__main__":
        refcommon.main(sys.modules[__name__])

main() takes the layer as an object (normally the script's own module) with

    NAME       prefix of every printed line, e.g. "qwen3_ref"
    T          token count, passed as `--sym T=...` if FILE has `where T in`
    K          experts used per token
    TOL        bound on the norm-wise relative errors (l2 and max-norm)
    TIE_GAP    minimal gap between the k-th and (k+1)-th routing score
    BASE_SEED  first seed tried by pick_data()
    INPUTS     argument names passed with --input, in call order
    PARAMS     argument names passed with --param, after INPUTS
    make_data(seed)     -> {name: float32 array} for INPUTS + PARAMS
    reference(*arrays)  -> (out, scores): the float64 layer output and the
                           routing scores top-k is taken over, one row a token

and optionally the hooks

    accept(data, ref, scores) -> bool   further condition a seed's data must
                                        meet (default: none)
    NO_DATA_MSG                         failure message when no seed is found
    summary() -> str                    text appended to the seed line

Usage of a layer script: LAYER_ref.py FILE.moe WORKDIR. It creates WORKDIR (a
directory; replaced if it exists), writes the picked data there as float32
.npy files, runs moe-run (from $MOE_RUN if set, else from PATH) on FILE with
them and compares OUT/result0.npy with reference(). Exits non-zero with a
message on any failure.
"""

import os
import re
import shutil
import subprocess
import sys

import numpy as np


def fail(layer, msg):
    print(f"{layer.NAME}: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


# --- helpers for the layers' math ---------------------------------------------

def softmax(v, axis=-1):
    m = np.max(v, axis=axis, keepdims=True)
    e = np.exp(v - m)
    return e / np.sum(e, axis=axis, keepdims=True)


def topk(scores, k):
    """Indices of the k largest per row, by descending value, ties -> lower index."""
    # A stable sort of the negated scores keeps equal values in index order.
    return np.argsort(-scores, axis=-1, kind="stable")[..., :k]


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


# --- data -------------------------------------------------------------------

def tie_gap(scores, k):
    srt = -np.sort(-scores, axis=-1)
    return float(np.min(srt[:, k - 1] - srt[:, k]))


def pick_data(layer):
    """The first seed from BASE_SEED whose top-k selection has no near-tie (so
    that float32 rounding cannot change which experts are selected) and whose
    data pass the layer's accept() hook, if any."""
    accept = getattr(layer, "accept", None)
    for seed in range(layer.BASE_SEED, layer.BASE_SEED + 1000):
        data = layer.make_data(seed)
        ref, scores = layer.reference(*(data[n] for n in layer.INPUTS + layer.PARAMS))
        gap = tie_gap(scores, layer.K)
        if gap >= layer.TIE_GAP and (accept is None or accept(data, ref, scores)):
            return seed, data, ref, gap
    fail(layer, getattr(layer, "NO_DATA_MSG",
                        "could not generate test data without near-ties in the top-k"))


# --- driver -----------------------------------------------------------------

def check_signature(layer, text):
    """The function's argument names must be the ones the layer script binds."""
    expected = layer.INPUTS + layer.PARAMS
    code = re.sub(r"//[^\n]*", "", text)
    header = code[code.find("func"):].split("->", 1)[0]
    names = re.findall(r"%([A-Za-z_][A-Za-z0-9_.]*)\s*:", header)
    if sorted(names) != sorted(expected):
        fail(layer, f"argument names in the .moe file {names} are not the expected "
                    f"{expected}")


def main(layer):
    name, T, K, TOL = layer.NAME, layer.T, layer.K, layer.TOL
    if len(sys.argv) != 3:
        fail(layer, f"usage: {sys.argv[0]} FILE.moe WORKDIR")
    moe_file, workdir = sys.argv[1], sys.argv[2]
    try:
        with open(moe_file) as f:
            text = f.read()
    except OSError as e:
        fail(layer, f"cannot read {moe_file}: {e}")
    check_signature(layer, text)

    moe_run = os.environ.get("MOE_RUN") or shutil.which("moe-run")
    if not moe_run:
        fail(layer, "moe-run not found (not on PATH and $MOE_RUN not set)")

    if os.path.isdir(workdir) and not os.path.islink(workdir):
        shutil.rmtree(workdir)
    elif os.path.lexists(workdir):
        os.remove(workdir)
    datadir = os.path.join(workdir, "data")
    outdir = os.path.join(workdir, "out")
    os.makedirs(datadir)

    seed, data, ref, gap = pick_data(layer)
    extra = layer.summary() if hasattr(layer, "summary") else ""
    print(f"{name}: seed {seed}, T = {T}, min top-{K} score gap {gap:.3e}"
          + (f", {extra}" if extra else ""))

    cmd = [moe_run, moe_file]
    if re.search(r"\bwhere\s+T\s+in\b", text):
        cmd += ["--sym", f"T={T}"]
    for arg in layer.INPUTS + layer.PARAMS:
        path = os.path.join(datadir, arg + ".npy")
        np.save(path, np.ascontiguousarray(data[arg], dtype=np.float32))
        cmd += ["--input" if arg in layer.INPUTS else "--param", f"{arg}={path}"]
    cmd += ["--output", outdir]
    print(f"{name}: running: {' '.join(cmd)}")
    sys.stdout.flush()

    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as e:
        fail(layer, f"could not run moe-run: {e}")
    if proc.stdout:
        print(proc.stdout, end="")
    if proc.returncode != 0:
        print(proc.stderr, end="", file=sys.stderr)
        fail(layer, f"moe-run exited with status {proc.returncode}")

    result = os.path.join(outdir, "result0.npy")
    if not os.path.isfile(result):
        fail(layer, f"moe-run did not write {result}")
    got = np.load(result)
    if got.shape != ref.shape:
        fail(layer, f"result shape {got.shape}, expected {ref.shape}")
    if not np.all(np.isfinite(got)):
        fail(layer, "result contains NaN or Inf")

    got = got.astype(np.float64)
    diff = np.abs(got - ref)
    rel_l2 = float(np.linalg.norm(got - ref) / np.linalg.norm(ref))
    rel_max = float(np.max(diff) / np.max(np.abs(ref)))
    rel_elem = float(np.max(diff / np.maximum(np.abs(ref), 1e-6)))
    print(f"{name}: relative error: l2 {rel_l2:.3e}, max-norm {rel_max:.3e} "
          f"(tolerance {TOL:.0e}); max abs {float(np.max(diff)):.3e}, "
          f"max elementwise relative {rel_elem:.3e} (informative)")
    if not (rel_l2 <= TOL and rel_max <= TOL):
        worst = np.unravel_index(np.argmax(diff), diff.shape)
        fail(layer, f"result differs from the NumPy reference beyond {TOL:.0e}: worst "
                    f"element {tuple(int(i) for i in worst)}: got {got[worst]:.8g}, "
                    f"expected {ref[worst]:.8g}")
    print(f"{name}: PASS")
