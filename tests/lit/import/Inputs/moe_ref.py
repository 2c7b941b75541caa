"""NumPy reference of the feed-forward sub-block of one block of a GGUF MoE model.

The moe-import tests compare what the project computes for a block's FFN
sub-block against this file. It computes, in float64, what llama.cpp computes
for that sub-block (build_moe_ffn / build_ffn and the model files of the
architectures below), from the weights read back from the GGUF file with
gguf_np.py. It is independent of the project's C++ code: it shares no code or
tables with it, so a misreading in one is not silently repeated in the other.
Standard library and NumPy only.

Usage:
  moe_ref.py ref MODEL.gguf LAYER X.npy OUT.npy
      X.npy is [T, n_embd] float32, the residual stream entering the FFN
      sub-block (llama.cpp's ffn_inp; gemma4's attn_out). Writes OUT.npy,
      float32 [T, n_embd]: what llama.cpp adds back to the residual stream
      (the residual add itself is not included).
  moe_ref.py compare REF.npy GOT.npy TOL
      Prints "match (shape [T, D], nse <= TOL)" when
      sum((got - ref)^2) / sum(ref^2) <= TOL; otherwise (or on a shape
      mismatch or a NaN) prints why and exits non-zero.
  moe_ref.py check MODEL.gguf LAYER X.npy TOL LABEL GOT.npy [LABEL GOT.npy...]
      ref and compare in one process (NumPy starts once): for each pair,
      prints "LABEL: match (...)" as compare does, and stops at the first
      mismatch ("LABEL: " and why, exit non-zero).

Architectures (general.architecture), with x the input and xn = rms_norm(x, w):
  qwen3moe   xn with ffn_norm; softmax over all experts, top-k, weights
             renormalised; SwiGLU experts; optional per-expert
             ffn_{up,gate,down}_exps.scale.
  llama      (Mixtral) as qwen3moe, but ffn_gate_exps is optional (without
             it the expert activation is silu(up)).
  gpt-oss    xn with post_attention_norm; logits + ffn_gate_inp.bias; top-k of
             the logits, softmax over the k selected; biases on gate/up/down;
             OAI SwiGLU (alpha 1.702, limit 7); no renormalisation.
  qwen2moe   xn with ffn_norm; softmax, top-k, no renormalisation; SwiGLU;
             plus a shared SwiGLU expert gated by
             sigmoid(xn . ffn_gate_inp_shexp).
  qwen35moe  as qwen2moe, but xn with post_attention_norm, weights
             renormalised, optional per-expert scales.
  gemma4     (layers with ffn_gate_inp only)
             post_ffw_norm( post_ffw_norm_1(dense GeGLU MLP(ffn_norm(x)))
                          + post_ffw_norm_2(MoE(pre_ffw_norm_2(x))) );
             the router sees rms_norm(x) / sqrt(n_embd) * ffn_gate_inp.scale;
             softmax, top-k, renormalised; GeGLU (tanh GELU, evaluated by the
             formula) experts; optional per-expert scales.

Every architecture's experts come from ffn_gate_up_exps [E, 2F, D] (gate rows
first; gpt-oss: with ffn_gate_up_exps.bias [E, 2F]) when the block has it,
else from ffn_gate_exps and ffn_up_exps.

Tensors are read with shape reversed(ggml ne), outermost first: router
[E, D], ffn_{up,gate}_exps [E, F, D], ffn_gate_up_exps [E, 2F, D],
ffn_down_exps [E, D, F]. Top-k selection must not be a near-tie: when the
k-th and (k+1)-th selection values of a token are within 1e-5 (relative to
the largest selection value of that token), this raises "top-k selection too
close to call", so that no test depends on how ties are broken.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gguf_np import read_gguf, read_gguf_raw  # noqa: E402

NORM_W_CLAMP = 6.103515625e-5   # smallest normal fp16, llama.cpp's clamp of the weight sum
TIE_REL = 1e-5
OAI_ALPHA, OAI_LIMIT = 1.702, 7.0


class RefError(Exception):
    pass


# --- elementwise pieces -----------------------------------------------------

def rms_norm(x, eps, w=None):
    y = x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)
    return y if w is None else y * w


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def silu(x):
    return x / (1.0 + np.exp(-x))


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))


def swiglu(g, u):
    return silu(g) * u


def geglu(g, u):
    return gelu_tanh(g) * u


def swiglu_oai(g, u):
    g = np.minimum(g, OAI_LIMIT)
    u = np.clip(u, -OAI_LIMIT, OAI_LIMIT)
    return g * sigmoid(OAI_ALPHA * g) * (u + 1.0)


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# --- routing ----------------------------------------------------------------

def route(logits, k, gating, norm_w):
    """(ids [T, k], weights [T, k]) as build_moe_ffn computes them.

    gating "softmax": softmax over all E, top-k of the probabilities, weights =
    the selected probabilities. "softmax_weight": top-k of the logits, weights =
    softmax over the k selected logits. norm_w divides by the clamped sum."""
    T, E = logits.shape
    if not 1 <= k <= E:
        raise RefError(f"expert_used_count {k} not in [1, {E}]")
    sel = softmax(logits) if gating == "softmax" else logits
    ids = np.argsort(-sel, axis=-1, kind="stable")[:, :k]
    if k < E:
        srt = -np.sort(-sel, axis=-1)
        gap = srt[:, k - 1] - srt[:, k]
        scale = np.abs(sel).max(axis=-1)
        bad = np.flatnonzero(~(gap > TIE_REL * scale))
        if bad.size:
            t = int(bad[0])
            raise RefError(f"top-k selection too close to call: token {t}, "
                           f"values {srt[t, k - 1]!r} and {srt[t, k]!r}")
    w = np.take_along_axis(sel, ids, axis=-1)
    if gating == "softmax_weight":
        w = softmax(w)
    if norm_w:
        w = w / np.maximum(w.sum(axis=-1, keepdims=True), NORM_W_CLAMP)
    return ids, w


def mm_id(W, xin, ids, scale=None, bias=None):
    """Per-token, per-selected-expert matmul: W [E, N, K], xin [T, K] or
    [T, k, K], ids [T, k] -> [T, k, N]; then * scale[e], then + bias[e]
    (build_lora_mm_id, then ggml_add_id)."""
    Wsel = W[ids]                                   # [T, k, N, K]
    if xin.ndim == 2:
        y = np.einsum("tjnk,tk->tjn", Wsel, xin)
    else:
        y = np.einsum("tjnk,tjk->tjn", Wsel, xin)
    if scale is not None:
        y = y * scale[ids][..., None]
    if bias is not None:
        y = y + bias[ids]
    return y


def moe(xin, ids, w, act, up, down, gate=None, gate_up=None,
        up_s=None, gate_s=None, down_s=None, up_b=None, gate_b=None, down_b=None,
        gate_up_b=None):
    """sum_j w_j * (down_e (act(gate_e, up_e)) * down_s[e] + down_b[e]).

    gate_up [E, 2F, D] (gate rows first) is one matmul whose result is
    scaled by up_s[e] and biased by gate_up_b[e] [2F], then cut in halves."""
    if gate_up is not None:
        gu = mm_id(gate_up, xin, ids, up_s, gate_up_b)
        F = gate_up.shape[1] // 2
        g, u = gu[..., :F], gu[..., F:]
        h = act(g, u)
    else:
        u = mm_id(up, xin, ids, up_s, up_b)
        if gate is not None:
            g = mm_id(gate, xin, ids, gate_s, gate_b)
            h = act(g, u)
        else:
            h = silu(u)   # build_moe_ffn's has_gate == false path (LLM_FFN_SILU)
    y = mm_id(down, h, ids, down_s, down_b)         # [T, k, D]
    return np.einsum("tjd,tj->td", y, w)


# --- model ------------------------------------------------------------------

class Layer:
    def __init__(self, path, L):
        self.path, self.L = path, L
        raw = read_gguf_raw(path)
        prefix = f"blk.{L}."
        names = [n for n in raw.tensors if n.startswith(prefix)]
        self.meta, t = read_gguf(path, names)
        self.t = {n[len(prefix):]: a.astype(np.float64) for n, a in t.items()}
        self.arch = self.meta.get("general.architecture")

    def key(self, suffix):
        k = f"{self.arch}.{suffix}"
        if k not in self.meta:
            raise RefError(f"{self.path}: missing metadata key '{k}'")
        return self.meta[k]

    def has(self, name):
        return name in self.t

    def get(self, name, shape=None):
        if name not in self.t:
            raise RefError(f"{self.path}: missing tensor 'blk.{self.L}.{name}'")
        a = self.t[name]
        if shape is not None and a.shape != tuple(shape):
            raise RefError(f"{self.path}: tensor 'blk.{self.L}.{name}' has shape "
                           f"{list(a.shape)}, expected {list(shape)}")
        return a

    def opt(self, name, shape=None):
        return self.get(name, shape) if name in self.t else None


def experts_common(m, D):
    """Router [E, D] and expert sizes from the tensor shapes."""
    Wr = m.get("ffn_gate_inp.weight")
    if Wr.ndim != 2 or Wr.shape[1] != D:
        raise RefError(f"blk.{m.L}.ffn_gate_inp.weight has shape {list(Wr.shape)}, "
                       f"expected [E, {D}]")
    E = Wr.shape[0]
    k = m.key("expert_used_count")
    if not isinstance(k, int) or isinstance(k, bool):
        raise RefError(f"{m.arch}.expert_used_count is not an integer: {k!r}")
    return Wr, E, k


def ffn_experts(m, xn, ids, w, D, E, act, gate_optional=False, scales=True, biases=False):
    """The routed experts, from ffn_gate_up_exps when the block has it (as
    llama.cpp's loader prefers it), else from ffn_gate_exps/ffn_up_exps."""
    if not m.has("ffn_gate_up_exps.weight"):
        return ffn_separate(m, xn, ids, w, D, E, act, gate_optional, scales, biases)
    gu = m.get("ffn_gate_up_exps.weight")
    if gu.ndim != 3 or gu.shape[0] != E or gu.shape[2] != D or gu.shape[1] % 2:
        raise RefError(f"blk.{m.L}.ffn_gate_up_exps.weight has shape {list(gu.shape)}, "
                       f"expected [{E}, 2F, {D}]")
    F = gu.shape[1] // 2
    kw = {}
    if scales:
        kw.update(up_s=m.opt("ffn_up_exps.scale", (E,)),
                  down_s=m.opt("ffn_down_exps.scale", (E,)))
    if biases:
        kw.update(gate_up_b=m.get("ffn_gate_up_exps.bias", (E, 2 * F)),
                  down_b=m.get("ffn_down_exps.bias", (E, D)))
    return moe(xn, ids, w, act, None, m.get("ffn_down_exps.weight", (E, D, F)),
               gate_up=gu, **kw)


def ffn_separate(m, xn, ids, w, D, E, act, gate_optional=False, scales=True, biases=False):
    up = m.get("ffn_up_exps.weight")
    if up.ndim != 3 or up.shape[0] != E or up.shape[2] != D:
        raise RefError(f"blk.{m.L}.ffn_up_exps.weight has shape {list(up.shape)}, "
                       f"expected [{E}, F, {D}]")
    F = up.shape[1]
    gate = m.opt("ffn_gate_exps.weight", (E, F, D)) if gate_optional else \
        m.get("ffn_gate_exps.weight", (E, F, D))
    down = m.get("ffn_down_exps.weight", (E, D, F))
    kw = {}
    if scales:
        kw.update(up_s=m.opt("ffn_up_exps.scale", (E,)),
                  gate_s=m.opt("ffn_gate_exps.scale", (E,)) if gate is not None else None,
                  down_s=m.opt("ffn_down_exps.scale", (E,)))
    if biases:
        kw.update(up_b=m.get("ffn_up_exps.bias", (E, F)),
                  gate_b=m.get("ffn_gate_exps.bias", (E, F)),
                  down_b=m.get("ffn_down_exps.bias", (E, D)))
    return moe(xn, ids, w, act, up, down, gate=gate, **kw)


def ref_qwen3moe(m, x, eps, gate_optional=False):
    D = x.shape[1]
    Wr, E, k = experts_common(m, D)
    xn = rms_norm(x, eps, m.get("ffn_norm.weight", (D,)))
    ids, w = route(xn @ Wr.T, k, "softmax", norm_w=True)
    return ffn_experts(m, xn, ids, w, D, E, swiglu, gate_optional=gate_optional)


def ref_llama(m, x, eps):
    return ref_qwen3moe(m, x, eps, gate_optional=True)


def ref_gptoss(m, x, eps):
    D = x.shape[1]
    Wr, E, k = experts_common(m, D)
    xn = rms_norm(x, eps, m.get("post_attention_norm.weight", (D,)))
    logits = xn @ Wr.T + m.get("ffn_gate_inp.bias", (E,))
    ids, w = route(logits, k, "softmax_weight", norm_w=False)
    return ffn_experts(m, xn, ids, w, D, E, swiglu_oai, scales=False, biases=True)


def dense_ffn(m, h, D, suffix, act, scales=False):
    """build_ffn(h, ffn_up<suffix>, ffn_gate<suffix>, ffn_down<suffix>, PAR):
    down(act(gate h, up h)); with `scales`, each projection times its
    optional ffn_{up,gate,down}<suffix>.scale {1}."""
    wu = m.get(f"ffn_up{suffix}.weight")
    if wu.ndim != 2 or wu.shape[1] != D:
        raise RefError(f"blk.{m.L}.ffn_up{suffix}.weight has shape {list(wu.shape)}, "
                       f"expected [F, {D}]")
    F = wu.shape[0]
    proj = {}
    for name, w in (("up", wu), ("gate", m.get(f"ffn_gate{suffix}.weight", (F, D)))):
        proj[name] = h @ w.T
        if scales and m.has(f"ffn_{name}{suffix}.scale"):
            proj[name] = proj[name] * m.get(f"ffn_{name}{suffix}.scale", (1,))
    out = act(proj["gate"], proj["up"]) @ m.get(f"ffn_down{suffix}.weight", (D, F)).T
    if scales and m.has(f"ffn_down{suffix}.scale"):
        out = out * m.get(f"ffn_down{suffix}.scale", (1,))
    return out


def ref_qwen2moe(m, x, eps):
    D = x.shape[1]
    Wr, E, k = experts_common(m, D)
    xn = rms_norm(x, eps, m.get("ffn_norm.weight", (D,)))
    ids, w = route(xn @ Wr.T, k, "softmax", norm_w=False)
    out = ffn_experts(m, xn, ids, w, D, E, swiglu, scales=False)
    sh = dense_ffn(m, xn, D, "_shexp", swiglu)
    z = (xn @ m.get("ffn_gate_inp_shexp.weight", (D,)))[:, None]
    return out + sigmoid(z) * sh


def ref_qwen35moe(m, x, eps):
    """Qwen3.5 MoE (llama.cpp src/models/qwen35moe.cpp, build_layer_ffn):
    the input normalised by post_attention_norm, softmax routing with
    renormalised weights, SwiGLU experts (merged or separate, optional
    per-expert scales), plus a shared SwiGLU expert times
    sigmoid(xn . ffn_gate_inp_shexp)."""
    D = x.shape[1]
    Wr, E, k = experts_common(m, D)
    xn = rms_norm(x, eps, m.get("post_attention_norm.weight", (D,)))
    ids, w = route(xn @ Wr.T, k, "softmax", norm_w=True)
    out = ffn_experts(m, xn, ids, w, D, E, swiglu)
    sh = dense_ffn(m, xn, D, "_shexp", swiglu)
    z = (xn @ m.get("ffn_gate_inp_shexp.weight", (D,)))[:, None]
    return out + sigmoid(z) * sh


def ref_gemma4(m, x, eps):
    D = x.shape[1]
    if not m.has("ffn_gate_inp.weight"):
        raise RefError(f"{m.path}: gemma4 block {m.L} has no ffn_gate_inp.weight "
                       f"(not an MoE layer)")
    Wr, E, k = experts_common(m, D)
    nw = lambda name: m.get(name, (D,))

    # dense MLP (build_ffn, GELU, PAR); per-tensor .scale {1} if present
    h1 = rms_norm(x, eps, nw("ffn_norm.weight"))
    dense = dense_ffn(m, h1, D, "", geglu, scales=True)
    dense = rms_norm(dense, eps, nw("post_ffw_norm_1.weight"))

    # router
    r = rms_norm(x, eps) * (1.0 / np.sqrt(D)) * nw("ffn_gate_inp.scale")
    ids, w = route(r @ Wr.T, k, "softmax", norm_w=True)

    # experts
    h2 = rms_norm(x, eps, nw("pre_ffw_norm_2.weight"))
    out = ffn_experts(m, h2, ids, w, D, E, geglu)
    out = rms_norm(out, eps, nw("post_ffw_norm_2.weight"))
    return rms_norm(dense + out, eps, nw("post_ffw_norm.weight"))


ARCHS = {
    "qwen3moe": ref_qwen3moe,
    "llama": ref_llama,
    "mixtral": ref_llama,  # an alias some converters write
    "gpt-oss": ref_gptoss,
    "qwen2moe": ref_qwen2moe,
    "qwen35moe": ref_qwen35moe,
    "gemma4": ref_gemma4,
}


def reference(path, L, x):
    """float64 [T, n_embd]: the FFN sub-block output of block L for input x."""
    m = Layer(path, L)
    if m.arch not in ARCHS:
        raise RefError(f"{path}: unsupported architecture {m.arch!r} "
                       f"(supported: {', '.join(ARCHS)})")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise RefError(f"input must be [T, n_embd], got shape {list(x.shape)}")
    if not m.t:
        raise RefError(f"{path}: no tensors for block {L}")
    eps = m.key("attention.layer_norm_rms_epsilon")
    return ARCHS[m.arch](m, x, float(eps))


def mismatch(ref, got_path, tol):
    """Why GOT.npy does not match ref (float64) within tol, or None."""
    got = np.load(got_path).astype(np.float64)
    if ref.shape != got.shape:
        return f"shape {list(got.shape)}, expected {list(ref.shape)}"
    if np.isnan(got).any():
        return f"NaN in {got_path} ({int(np.isnan(got).sum())} values)"
    num = float(((got - ref) ** 2).sum())
    den = float((ref ** 2).sum())
    err = num / den if den > 0 else (0.0 if num == 0 else float("inf"))
    if not err <= tol:
        return f"normalised squared error {err:.3g} > {tol:g}"
    return None


def compare(ref, ref_name, got_path, tol):
    if np.isnan(ref).any():
        sys.exit(f"NaN in the reference {ref_name}")
    why = mismatch(ref, got_path, tol)
    if why:
        sys.exit(why)
    print(f"match (shape {list(ref.shape)}, nse <= {tol:g})", flush=True)


def main(a):
    if len(a) == 6 and a[1] == "ref":
        try:
            out = reference(a[2], int(a[3]), np.load(a[4]))
        except RefError as e:
            sys.exit(f"moe_ref: {e}")
        np.save(a[5], out.astype(np.float32))
    elif len(a) == 5 and a[1] == "compare":
        compare(np.load(a[2]).astype(np.float64), a[2], a[3], float(a[4]))
    elif len(a) >= 8 and len(a) % 2 == 0 and a[1] == "check":
        try:
            # Rounded to float32 as "ref" writes it: the same reference.
            ref = reference(a[2], int(a[3]), np.load(a[4])).astype(np.float32)
        except RefError as e:
            sys.exit(f"moe_ref: {e}")
        ref = ref.astype(np.float64)
        for label, got in zip(a[6::2], a[7::2]):
            print(f"{label}: ", end="", flush=True)
            compare(ref, a[2], got, float(a[5]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
