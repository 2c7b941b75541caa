# The tiny layers of examples/*_tiny.moe re-implemented in NumPy (float64)
# from DESIGN.md's op semantics, not from the project's C++: the oracle the
# Python module's results are compared with.
import numpy as np

CLAMP_MIN = 6.1e-5


def softmax(v, axis=-1):
    e = np.exp(v - v.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def topk(v, k):
    """Indices of the k largest along the last axis, descending, ties to the lower index."""
    return np.argsort(-v, axis=-1, kind="stable")[..., :k]


def topk_gap(v, k):
    """The smallest gap between the k-th and (k+1)-th value of a row: a
    routing decision closer than this could flip between two float orders."""
    s = -np.sort(-v, axis=-1)
    return float((s[..., k - 1] - s[..., k]).min())


def silu(v):
    return v / (1.0 + np.exp(-v))


def gelu_tanh(v):
    return 0.5 * v * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (v + 0.044715 * v ** 3)))


def experts(w, ids, v):
    """matmul_id: row t, slot j is w[ids[t, j]] @ v[t, j or 0]."""
    if v.ndim == 2:
        v = v[:, None, :]
    v = np.broadcast_to(v, ids.shape + v.shape[-1:])
    return np.einsum("tjnk,tjk->tjn", w[ids], v)


def qwen3(x, gate_inp, up_exps, gate_exps, down_exps, k=2):
    """examples/qwen3_tiny.moe: softmax router, top-k, normalised weights, swiglu experts."""
    x, gate_inp, up_exps, gate_exps, down_exps = (
        a.astype(np.float64) for a in (x, gate_inp, up_exps, gate_exps, down_exps))
    probs = softmax(x @ gate_inp.T)
    ids = topk(probs, k)
    w = np.take_along_axis(probs, ids, axis=1)
    wn = w / np.maximum(w.sum(axis=1, keepdims=True), CLAMP_MIN)
    act = silu(experts(gate_exps, ids, x)) * experts(up_exps, ids, x)
    down = experts(down_exps, ids, act)
    return (down * wn[..., None]).sum(axis=1), probs


def gemma4(x, logits, gate_up_exps, down_exps, down_exps_s, k=2):
    """examples/gemma4_tiny.moe: router logits as input, pre-merged gate_up
    (gate first), geglu, per-expert down scale, normalised weights."""
    x, logits, gate_up_exps, down_exps, down_exps_s = (
        a.astype(np.float64) for a in (x, logits, gate_up_exps, down_exps, down_exps_s))
    probs = softmax(logits)
    ids = topk(probs, k)
    w = np.take_along_axis(probs, ids, axis=1)
    wn = w / w.sum(axis=1, keepdims=True)
    gu = experts(gate_up_exps, ids, x)
    n = gu.shape[-1] // 2
    act = gelu_tanh(gu[..., :n]) * gu[..., n:]
    down = experts(down_exps, ids, act) * down_exps_s[ids][..., None]
    return (down * wn[..., None]).sum(axis=1), probs


def rel_err(got, want):
    """Norm-wise relative error."""
    return float(np.linalg.norm(got.astype(np.float64) - want) / max(np.linalg.norm(want), 1e-30))


def quantize_q8_0(w):
    """ggml's reference q8_0 quantiser: blocks of 32 along the innermost
    axis, each an f16 scale d = amax / 127 and 32 int8 round(x / d).
    Returns the GGUF bytes (uint8, [..., K / 32 * 34]) and the values they
    stand for (float32, w's shape)."""
    b = w.astype(np.float32).reshape(-1, 32)
    amax = np.abs(b).max(axis=1, keepdims=True)
    d = (amax / 127.0).astype(np.float16)
    inv = np.where(d != 0, 1.0 / d.astype(np.float32), 0.0)
    q = np.round(b * inv).astype(np.int8)
    blocks = np.concatenate([d.view(np.uint8).reshape(-1, 2), q.view(np.uint8)], axis=1)
    values = (q.astype(np.float32) * d.astype(np.float32)).reshape(w.shape)
    return blocks.reshape(w.shape[:-1] + (w.shape[-1] // 32 * 34,)), values


def to_bf16_bits(w):
    """float32 -> bf16 bit patterns (uint16, round to nearest even) and the values they stand for."""
    u = w.astype(np.float32).view(np.uint32)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    return r, (r.astype(np.uint32) << 16).view(np.float32)
